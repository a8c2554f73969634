// kpilot-parent: v2 sha256 69c18e31a92c6e0b3e8ec00bced6d1aa8e43364bee0f9949a2cf2729ec7dd93d
//
// Candidate v3 for tasks/residual_gate_add: v2 (included below, its entry renamed) everywhere,
// except the shared-gate-row broadcast (gate mode 1, `[1, .., 1, D]`) in the mid-size bucket
// 2^18 <= numel / 8 < 2^21 16-byte vectors a tensor (4-32 MiB a tensor), which runs one flat
// pass shaped like the harness's stream reference (kps_stream, kernels/kpilot_support.cu).
//
// Why. Issue 11 asks >= 90% of the copy bandwidth on every row of 64 MB or more. v2 runs the
// baseline's kda_bcast8_row kernel there; H200 run 20261201T025635Z-5e55a4d1 (copy 4.256 TB/s):
//   flux2_bcast_s4096_c3072  75.5 MB: v2 20.07 us, 88.4% of copy; stream ref 19.52 us (97.3%)
//   flux2_bcast_s4608_c3072  84.9 MB: v2 22.34 us, 89.3% of copy; stream ref 21.53 us (96.4%)
// and the stream reference itself sits at 91.2% / 92.9% of copy on these two rows, so only a
// kernel within ~1.3% / ~3.5% of the stream reference meets the goal. The baseline's broadcast
// kernel (grid (cdiv(D/8, 256), cdiv(rows, 4)): at D = 3072 the second column block runs 128 of
// its 256 threads) walks 4 rows a thread with load, load, store per row (PTX: the loads are not
// hoisted past the `row >= rows` guard), where kps_stream gives each thread one 16-byte vector of
// every region in address order, 2048 threads an SM.
//
// The kernel (v3_bcast_kernel): 256 threads (kps_stream's block), thread j of a flat
// non-persistent grid (cdiv(nv, 256) CTAs, no grid-stride, no 65535 cap) handles 16-byte vector
// j: residual and update loaded with ld.global.cs (V3_POLICY 0; v3b: 1, see below), the gate
// vector by its column j mod (D / 8) with an ordinary cached load (ld.global.nc: one D-wide row
// reused by every token, L1 / L2 hits), out stored with st.global.cs. The column comes from one
// 32-bit multiply-high and a shift (round-up magic number, exact for j < 2^31 and D / 8 >= 2;
// fuse_scale_shift v5's formula), no 64-bit division. One vector a thread, not two:
// fuse_scale_shift's v5b (two vectors a thread, same byte mix: two full 16-bit reads, one
// broadcast row, one write) was 2-5% slower than v5 (one) on every large row, H200 runs
// 20261201T035113Z-401ecd7a / 20261201T035128Z-7d09a57b.
//
// Arithmetic: v1's rga_pack<T> (the baseline's rga_value per element: product rounded to T, then
// the sum rounded to T, __float2bfloat16_rn / __float2half_rn), applied to the same elements, so
// the output is bit-identical to the baseline's.
//
// Fast path (else v2's entry, unchanged, with v2's path names and rejections): fp16/bf16; every
// check v2/the baseline makes passes and routes the call to its vectorized broadcast kernel with
// gate mode 1 (residual and update contiguous of one shape, rank >= 2, not transposed-dense, a
// contiguous `[1, .., 1, D]` gate, out contiguous, every pointer 16-byte aligned, D % 8 == 0);
// D >= 16; 2^18 <= numel / 8 < 2^21. Path "v3_flat1_row_<dt>_<policy>" (policy "cs" here, "nc"
// in v3b). Production rows on it: flux2 S4608 and S4096 (1.77M / 1.57M vectors); regression rows
// reg_fp16_bcast_s1024_d3072 and reg_bf16_b2_bcast_s512_d3072 (393,216 vectors, fp16 and bf16).
// Not on it: ideogram4 (2.36M vectors, 91.8% of copy in v2) and ltx2 bcast (16.7M, 99.4%): both
// meet the goal already, and the closest evidence, fuse_scale_shift v5 (this kernel's shape with
// the same policy on the same byte mix), was 0.969-0.985x against a 4-row tile kernel on every
// row of 75 MB to 1.16 GB; mode 3 (a gate row per batch) stays on v2 as well.
//
// PREDICTION (not measured; H200, cold, against run 20261201T025635Z-5e55a4d1), target = the
// stream reference's us:
//   flux2_bcast_s4096_c3072: target 19.52 us; v3 ~20.1-20.5 us (0.98-1.00x, 86.5-88.3% of copy)
//   flux2_bcast_s4608_c3072: target 21.53 us; v3 ~22.3-22.7 us (0.98-1.00x, 87.9-89.5% of copy)
// i.e. at best `same`, more likely 1-2% slower: fuse_scale_shift v5 ran this shape and policy
// at 95.2% of its stream reference on qwen S4096 C3072 (76 MB, the same byte mix and size as
// flux2 S4096; 20.35 vs 19.37 us, run 20261201T035113Z-401ecd7a), below the 4-row tile's 97.4%.
// Every other row as v2 (its code). v3b changes one knob (the cache policy, V3_POLICY 1: the
// ld.global.nc loads and write-back stores of the baseline's kda_vec8_full kernel, which runs at
// 100.9-101.1% of the stream reference on ltx2 full S8160) and is the one predicted to reach the
// goal; see candidates/v3b.cu and NOTES.md.

#define kp_residual_gate_add v3_v2_residual_gate_add
#include "v2.cu"
#undef kp_residual_gate_add

#ifndef V3_POLICY
#define V3_POLICY 0  // 0: residual/update ld.global.cs, out st.global.cs (kps_stream's); 1 (v3b): ld.global.nc, st.global
#endif

namespace v3 {

constexpr int kThreads = 256;                 // kps_stream's block
constexpr int64_t kMinVectors = int64_t{1} << 18;  // below: v2's one-vector-a-thread v1 path
constexpr int64_t kMaxVectors = int64_t{1} << 21;  // from here: v2 (the baseline's kernel)

template <int P>
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
    if constexpr (P == 0) return __ldcs(p);
    else return __ldg(p);
}

template <int P>
__device__ __forceinline__ void st_stream(uint4* p, const uint4& v) {
    if constexpr (P == 0) __stcs(p, v);
    else *p = v;
}

// out[j] = rga(residual[j], update[j], gate[j mod rv]) for j < nv; rv = D / 8 >= 2, the column
// as j - rv * (umulhi(j, mul) >> shr).
template <typename T, int P>
__global__ void __launch_bounds__(kThreads) v3_bcast_kernel(uint4* __restrict__ out, const uint4* __restrict__ res,
                                                            const uint4* __restrict__ upd,
                                                            const uint4* __restrict__ gate, uint32_t nv, uint32_t rv,
                                                            uint32_t mul, uint32_t shr) {
    const uint32_t j = blockIdx.x * static_cast<uint32_t>(kThreads) + threadIdx.x;
    if (j >= nv) return;
    const uint4 r = ld_stream<P>(res + j);
    const uint4 u = ld_stream<P>(upd + j);
    const uint32_t col = j - rv * (__umulhi(j, mul) >> shr);
    const uint4 g = __ldg(gate + col);
    st_stream<P>(out + j, rga_pack<T>(r, u, g));
}

// Round-up magic number for dividends below 2^31 (CUTLASS FastDivmod's rule), d >= 2:
// l = ceil(log2 d), mul = ceil(2^(31 + l) / d) < 2^32, q = umulhi(j, mul) >> (l - 1).
void magic(uint32_t d, uint32_t* mul, uint32_t* shr) {
    uint32_t l = 0;
    while ((uint64_t{1} << l) < d) ++l;
    *mul = static_cast<uint32_t>(((uint64_t{1} << (31 + l)) + d - 1) / d);
    *shr = l - 1;
}

// Takes the call when v2 would run the baseline's broadcast kernel in mode 1 on a mid-size
// tensor; false: v2's entry decides (including every refusal and malformed descriptor).
bool try_flat(kp_call* call, void* stream, int32_t* rc) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 0)
        return false;
    for (int i = 0; i < 4; ++i)
        if (call->tensors[i].rank < 0 || call->tensors[i].rank > KP_MAX_RANK) return false;
    const kp_tensor& res = call->tensors[0];
    const kp_tensor& upd = call->tensors[1];
    const kp_tensor& gate = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    const int32_t dt = res.dtype;
    if (dt != KP_BF16 && dt != KP_F16) return false;
    if (upd.dtype != dt || gate.dtype != dt || out.dtype != dt) return false;
    if (res.rank < 2 || !same_shape(upd, res) || !same_shape(out, res) || !is_contiguous(out)) return false;
    int64_t gst[KP_MAX_RANK];
    if (!broadcast_strides(gate, res, gst)) return false;
    for (int d = 0; d < res.rank; ++d)
        if (res.shape[d] < 0) return false;
    const int64_t numel = numel_of(res);
    if (numel <= 0) return false;
    if (transposed_dense(res, upd, gate) || !is_contiguous(res) || !is_contiguous(upd)) return false;
    bool gate_copy = false;
    if (route_mode(res, gate, &gate_copy) != kRow) return false;
    const int64_t hidden = res.shape[res.rank - 1];
    if (hidden % 8 != 0 || hidden < 16) return false;
    if (!aligned16(out.data) || !aligned16(res.data) || !aligned16(upd.data) || !aligned16(gate.data)) return false;
    const int64_t nv = numel / 8;
    if (nv < kMinVectors || nv >= kMaxVectors) return false;

    const auto n = static_cast<uint32_t>(nv);
    const auto rv = static_cast<uint32_t>(hidden / 8);
    uint32_t mul = 0, shr = 0;
    magic(rv, &mul, &shr);
    const unsigned grid = (n + kThreads - 1) / kThreads;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    auto* o = static_cast<uint4*>(out.data);
    const auto* r = static_cast<const uint4*>(res.data);
    const auto* u = static_cast<const uint4*>(upd.data);
    const auto* g = static_cast<const uint4*>(gate.data);
    if (dt == KP_BF16) v3_bcast_kernel<__nv_bfloat16, V3_POLICY><<<grid, kThreads, 0, st>>>(o, r, u, g, n, rv, mul, shr);
    else v3_bcast_kernel<__half, V3_POLICY><<<grid, kThreads, 0, st>>>(o, r, u, g, n, rv, mul, shr);
    snprintf(call->path, KP_PATH_LEN, "v3_flat1_row_%s_%s", dt_name(dt), V3_POLICY == 0 ? "cs" : "nc");
    *rc = cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return true;
}

}  // namespace v3

extern "C" {

int32_t kp_residual_gate_add(kp_call* call, void* stream) {
    int32_t rc = KP_OK;
    if (v3::try_flat(call, stream, &rc)) return rc;
    return v3_v2_residual_gate_add(call, stream);
}

}  // extern "C"
