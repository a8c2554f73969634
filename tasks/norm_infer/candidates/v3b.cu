// kpilot-parent: baseline sha256 f3543eb3b11904a91e2594b0ce380bb311fdd800df3983f254266875a36576c5
// Candidate v3b for tasks/norm_infer: v3 with ONE knob changed, kV3EvictFirst = true: the x row
// loads (TMA bulk copies) carry an L2 evict_first cache policy and y is stored with st.global.cs,
// the cache policy of the stream reference (kps_stream: ld.global.cs / st.global.cs); v3 keeps the
// default policies, as the baseline's plain ld.global / st.global. Path
// `v3_ln_f32_tma_t640_s5_evict_first`. Everything else is v3's, whose header follows.
//
// Candidate v3 for tasks/norm_infer: the baseline's own code (included below, unchanged) for every
// call but one family, fp32 LayerNorm with fp32 weight and bias on long rows (helios
// [8640, 5120]), which runs a persistent kernel whose loads are decoupled from the row's math.
//
// What changes and why (reasoning, ptxas numbers and the prediction in NOTES.md, section "v3"):
//   * triton_one_pass_rms_norm and every other norm_infer call: the baseline's entry points and
//     path names, byte for byte (baseline.cu is #included with its norm_infer entry renamed).
//   * norm_infer, fp32 x / out contiguous and 16-byte aligned, LayerNorm, fp32 weight and bias [N]
//     stride 1 and 16-byte aligned, N % 4 == 0 and 1024 <= N <= 5120, M at least 4 CTAs' worth of
//     rows: `v3_ln_f32_tma_t640_s5`. Persistent CTAs (2 an SM, 640 threads, grid = SMs x the
//     occupancy API's count, cached), CTA c takes rows c, c + grid, c + 2 grid, ...; each CTA keeps
//     a 5-stage ring of whole rows (20 KB each) in shared memory, filled by one TMA bulk copy a row
//     (cp.async.bulk ... mbarrier::complete_tx::bytes) issued as soon as the slot is read, so 4
//     rows a CTA (8 an SM, 160 KB) are in flight while the CTA reduces and stores the current one.
//     The baseline (Triton's layout) issues a row's loads only when its program starts and has none
//     in flight while it reduces, reads weight / bias and stores. Weight and bias are read once per
//     CTA into registers (2 float4 each a thread).
//   * Rounding: the baseline's (Triton's PTX) rounding points: mean = div.full(sum, N),
//     d = x - mean, var = div.full(sum of d * d, N), rstd = div.full(1, sqrt.approx.ftz(var + eps)),
//     x_hat = d * rstd rounded, y = fma(x_hat, w, b). Only the order of the cross-thread sums
//     differs (20 warp partials summed as a fixed tree by every thread).
//   * Repeatable and graph-safe: no global state, no counters; each CTA's row set is static.

#define kp_norm_infer base_norm_infer
#include "../baseline.cu"
#undef kp_norm_infer

namespace {

// The one knob v3b changes: true = the x loads carry an L2 evict_first policy and y is stored with
// st.global.cs (the stream reference's cache policy); false = default policies (the baseline's).
constexpr bool kV3EvictFirst = true;

constexpr int kV3Threads = 640;                     // 20 warps
constexpr int kV3Warps = kV3Threads / 32;
constexpr int kV3K = 2;                             // float4 a thread a row
constexpr int kV3MaxN = kV3Threads * kV3K * 4;      // 5120 floats
constexpr int kV3Stages = 5;                        // rows in the ring a CTA
constexpr int kV3SlotBytes = kV3MaxN * 4;           // 20480
constexpr int kV3Smem = kV3Stages * kV3SlotBytes;   // dynamic shared memory, 102400 bytes
constexpr int kV3MinRowsPerCta = 4;                 // below M = 4 x grid: the baseline

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
    uint32_t ok;
    asm volatile(
        "{\n\t.reg .pred p;\n\t"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
        "selp.u32 %0, 1, 0, p;\n\t}"
        : "=r"(ok)
        : "r"(bar), "r"(parity)
        : "memory");
    return ok != 0;
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    while (!mbar_try_wait(bar, parity)) {
    }
}
// One row into a slot: arm the barrier with the byte count, then the bulk copy that completes it.
__device__ __forceinline__ void v3_issue_row(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar,
                                             uint64_t policy) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
    if constexpr (kV3EvictFirst) {
        asm volatile(
            "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(dst),
            "l"(src), "r"(bytes), "r"(bar), "l"(policy)
            : "memory");
    } else {
        (void)policy;
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
                     "l"(src), "r"(bytes), "r"(bar)
                     : "memory");
    }
}

// Sum of the 20 warp partials, the same fixed tree in every thread.
__device__ __forceinline__ float v3_partials(const float* red) {
    const float4* r4 = reinterpret_cast<const float4*>(red);
    float4 p[kV3Warps / 4];
#pragma unroll
    for (int i = 0; i < kV3Warps / 4; ++i) p[i] = r4[i];
    float s[kV3Warps / 4];
#pragma unroll
    for (int i = 0; i < kV3Warps / 4; ++i) s[i] = (p[i].x + p[i].y) + (p[i].z + p[i].w);
    static_assert(kV3Warps / 4 == 5, "the tree below sums 5 groups");
    return ((s[0] + s[1]) + (s[2] + s[3])) + s[4];
}

__global__ void __launch_bounds__(kV3Threads, 2)
    v3_ln_kernel(const float* __restrict__ x, float* __restrict__ y, const float* __restrict__ w,
                 const float* __restrict__ b, int M, int N, float eps) {
    extern __shared__ __align__(128) unsigned char v3_ring[];
    __shared__ __align__(8) uint64_t bar[kV3Stages];
    __shared__ __align__(16) float red[2][kV3Warps];

    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    const int G = static_cast<int>(gridDim.x);
    const int row0 = static_cast<int>(blockIdx.x);
    const int nrows = row0 < M ? (M - 1 - row0) / G + 1 : 0;
    const uint32_t bytes = static_cast<uint32_t>(N) * 4u;
    const uint32_t ring = smem_u32(v3_ring);
    const uint32_t bar0 = smem_u32(bar);

    uint64_t policy = 0;
    if constexpr (kV3EvictFirst) asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));

    if (t == 0) {
#pragma unroll
        for (int s = 0; s < kV3Stages; ++s) mbar_init(bar0 + 8 * s, 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (t == 0) {
        for (int s = 0; s < kV3Stages && s < nrows; ++s)
            v3_issue_row(ring + s * kV3SlotBytes, x + static_cast<size_t>(row0 + s * G) * N, bytes, bar0 + 8 * s, policy);
    }

    // Weight and bias, once per CTA, in the thread's x layout: float4 t + k * 640.
    const float4* w4 = reinterpret_cast<const float4*>(w);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    bool valid[kV3K];
    float4 wr[kV3K], br[kV3K];
#pragma unroll
    for (int k = 0; k < kV3K; ++k) {
        const int i = t + k * kV3Threads;
        valid[k] = i * 4 < N;
        wr[k] = valid[k] ? w4[i] : make_float4(0.f, 0.f, 0.f, 0.f);
        br[k] = valid[k] ? b4[i] : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    const float n_f = static_cast<float>(N);

    for (int j = 0; j < nrows; ++j) {
        const int s = j % kV3Stages;
        const uint32_t parity = static_cast<uint32_t>(j / kV3Stages) & 1u;
        mbar_wait(bar0 + 8 * s, parity);
        const float4* slot = reinterpret_cast<const float4*>(v3_ring + s * kV3SlotBytes);
        float v[kV3K * 4];
#pragma unroll
        for (int k = 0; k < kV3K; ++k) {
            const float4 f = valid[k] ? slot[t + k * kV3Threads] : make_float4(0.f, 0.f, 0.f, 0.f);
            v[4 * k] = f.x;
            v[4 * k + 1] = f.y;
            v[4 * k + 2] = f.z;
            v[4 * k + 3] = f.w;
        }
        // mean: in-thread sum in register order, warp butterfly, the 20 partials.
        float sum = v[0];
#pragma unroll
        for (int e = 1; e < kV3K * 4; ++e) sum = sum + v[e];
        sum = lanes_sum<32>(sum);
        if (lane == 0) red[0][warp] = sum;
        __syncthreads();  // every thread has read slot s into registers: refill it
        if (t == 0 && j + kV3Stages < nrows)
            v3_issue_row(ring + s * kV3SlotBytes, x + static_cast<size_t>(row0 + (j + kV3Stages) * G) * N, bytes,
                         bar0 + 8 * s, policy);
        const float mean = div_full(v3_partials(red[0]), n_f);
        float d[kV3K * 4], xb[kV3K * 4];
#pragma unroll
        for (int e = 0; e < kV3K * 4; ++e) {
            d[e] = v[e] - mean;
            xb[e] = valid[e / 4] ? d[e] : 0.f;
        }
        // variance: d1*d1, fma(d0, d0, .), fma(d2, d2, .), ... as the baseline, then the partials.
        const float q = sumsq<kV3K * 4, 32>(xb);
        if (lane == 0) red[1][warp] = q;
        __syncthreads();
        const float rstd = div_full(1.0f, sqrt_approx_ftz(div_full(v3_partials(red[1]), n_f) + eps));
        float* yr = y + static_cast<size_t>(row0 + j * G) * N;
#pragma unroll
        for (int k = 0; k < kV3K; ++k) {
            if (!valid[k]) continue;
            float4 o;
            o.x = fmaf(__fmul_rn(d[4 * k], rstd), wr[k].x, br[k].x);
            o.y = fmaf(__fmul_rn(d[4 * k + 1], rstd), wr[k].y, br[k].y);
            o.z = fmaf(__fmul_rn(d[4 * k + 2], rstd), wr[k].z, br[k].z);
            o.w = fmaf(__fmul_rn(d[4 * k + 3], rstd), wr[k].w, br[k].w);
            float4* dst = reinterpret_cast<float4*>(yr) + t + k * kV3Threads;
            if constexpr (kV3EvictFirst) __stcs(dst, o);
            else *dst = o;
        }
        // red[0] is next written after this row's second barrier, red[1] after the next row's
        // first: every read of either precedes the barrier that follows it, so two buffers need
        // no third barrier.
    }
}

// Grid: SMs x resident CTAs (occupancy API at this kernel's dynamic shared memory), per device,
// computed once (with the attribute that lets the kernel take > 48 KB of dynamic shared memory).
int v3_grid() {
    static int cached_dev = -1, cached_grid = 0;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    if (dev == cached_dev) return cached_grid;
    int sms = 0, per_sm = 0;
    if (cudaFuncSetAttribute(v3_ln_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kV3Smem) != cudaSuccess ||
        cudaFuncSetAttribute(v3_ln_kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                             static_cast<int>(cudaSharedmemCarveoutMaxShared)) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, v3_ln_kernel, kV3Threads, kV3Smem) != cudaSuccess) {
        cudaGetLastError();
        sms = 0;
        per_sm = 0;
    }
    cached_dev = dev;
    cached_grid = sms * per_sm;
    return cached_grid;
}

}  // namespace

extern "C" {

// Tensors: x [M, N], weight [N]?, bias [N]?, out [M, N]. Scalars: eps, is_rms_norm.
int32_t kp_norm_infer(kp_call* call, void* stream) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION || call->n_tensors != 4 || call->n_scalars != 2 ||
        !ranks_valid(call))
        return KP_INVALID;
    const kp_tensor& x = call->tensors[0];
    const kp_tensor& w = call->tensors[1];
    const kp_tensor& b = call->tensors[2];
    const kp_tensor& out = call->tensors[3];
    const bool ln = call->scalars[1] == 0.0;
    const int64_t M = x.rank == 2 ? x.shape[0] : 0, N = x.rank == 2 ? x.shape[1] : 0;
    const bool family = ln && x.dtype == KP_F32 && x.rank == 2 && N % 4 == 0 && N >= 1024 && N <= kV3MaxN &&
                        contiguous(x) && out.dtype == KP_F32 && same_shape(out, x) && contiguous(out) &&
                        M * N < (1LL << 31) && x.data != nullptr && out.data != nullptr && aligned16(x.data) &&
                        aligned16(out.data) && w.dtype == KP_F32 && w.rank == 1 && w.shape[0] == N &&
                        w.stride[0] == 1 && w.data != nullptr && aligned16(w.data) && b.dtype == KP_F32 &&
                        b.rank == 1 && b.shape[0] == N && b.stride[0] == 1 && b.data != nullptr && aligned16(b.data);
    if (family) {
        const int grid = v3_grid();
        if (grid > 0 && M >= static_cast<int64_t>(kV3MinRowsPerCta) * grid) {
            set_path(call, kV3EvictFirst ? "v3_ln_f32_tma_t640_s5_evict_first" : "v3_ln_f32_tma_t640_s5");
            v3_ln_kernel<<<grid, kV3Threads, kV3Smem, static_cast<cudaStream_t>(stream)>>>(
                static_cast<const float*>(x.data), static_cast<float*>(out.data), static_cast<const float*>(w.data),
                static_cast<const float*>(b.data), static_cast<int>(M), static_cast<int>(N),
                static_cast<float>(call->scalars[0]));
            return launched();
        }
    }
    return base_norm_infer(call, stream);
}

}  // extern "C"
