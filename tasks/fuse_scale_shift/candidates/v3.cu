// kpilot-parent: baseline
//
// Candidate v3 for tasks/fuse_scale_shift: the baseline (the SGLang 0.5.23 port, included below
// under other names) on every path but one, plus a new path for the gated LayerNorm + select01
// entry points (EP2, EP3) on the production layout: one CTA per row, as the baseline, but with
// the streamed tensors kept out of L1 so that the selected modulation rows stay there.
//
// Why (ncu, H200, run 20261130T201705Z-0b39173a): the baseline's EP2 kernel is L2-bound (L2 at
// 84.9% of peak while DRAM is at 69.7%); on EP1, which has no re-read operand, L2 runs at 1.05x
// DRAM's share, on EP2 at 1.22x. The extra L2 traffic fits L1 misses on the modulation rows (three
// 6 KB rows a token, re-read by every token from L1 or L2) while x streams through L1 and evicts
// them. v2 (modulation in shared memory, persistent CTAs) removed that traffic but under-fed the
// memory system (dropped, NOTES.md). v3 keeps the baseline's grid (every row its own CTA, the
// hardware overlapping rows) and changes where bytes live:
//   - x (EP3: x, residual, residual_gate) is read with ld.global.nc.L1::no_allocate: read once,
//     never cached in L1;
//   - the modulation rows with ld.global.nc (read-only path, cached in L1);
//   - outputs stored with st.global (V3_STREAM_STORES: st.global.cs, evict-first in L2);
//   - K 16-byte vectors a thread, C / (8 K) threads: exactly C columns, no masked lanes (the
//     baseline's BLOCK_N = 4096 leaves a quarter of its lanes idle at C = 3072); V3_THREADS picks
//     the block size (K = C / (8 * V3_THREADS)).
// Arithmetic (fp32): mean = sum / C, var = sum((v - mean)^2) / C (two passes from registers),
// rstd = rsqrt(var + eps), out = fma((v - mean) * rstd, 1 + scale, shift) rounded once to bf16,
// gate_out = the selected gate row's bits, EP3's residual_out = fma(x, residual_gate, residual)
// rounded once (the normalisation uses it unrounded). The sums are in a different order from the
// baseline's (warp shuffles, then the warps in order), so results may differ by an ulp.
// Condition (else the baseline's path, which also does every refusal): bf16 x / outputs
// contiguous [B, L, C], C % 8 == 0, C / 8 divisible by V3_THREADS's K with whole warps, B * L <
// 2^31, no weight or bias, the six modulation tensors bf16 [1|B, C] with unit C stride and
// 16-byte aligned rows, index i32 or i64 contiguous [B, L], exactly one scalar (eps), C <= 8192
// (the baseline refuses wider rows).

#define kp_fuse_scale_shift_kernel v3_baseline_fuse_scale_shift_kernel
#define kp_fuse_layernorm_scale_shift_gate_select01_kernel v3_baseline_ln_select01
#define kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel v3_baseline_residual_ln_select01
#include "../baseline.cu"
#undef kp_fuse_scale_shift_kernel
#undef kp_fuse_layernorm_scale_shift_gate_select01_kernel
#undef kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel

#ifndef V3_THREADS
#define V3_THREADS 128
#endif
#ifndef V3_STREAM_STORES
#define V3_STREAM_STORES 0
#endif
#ifndef V3_PATH
#define V3_PATH "ln_row_l1mod"
#endif

namespace v3 {

struct Args {
    const uint4* x;
    const uint4* res;       // EP3
    const uint4* res_gate;  // EP3
    const uint4* mod[6];
    int64_t mod_sb[6];  // batch stride in 16-byte vectors, 0 when the tensor has one batch row
    const void* index;
    bool index_i64;
    uint4* out;
    uint4* res_out;  // EP3
    uint4* gate_out;
    unsigned L;
    int cv;  // C / 8
    float eps;
};

__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

__device__ __forceinline__ void st_out(uint4* p, const uint4& v) {
#if V3_STREAM_STORES
    __stcs(p, v);
#else
    *p = v;
#endif
}

__device__ __forceinline__ float bf_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf_hi(uint32_t w) { return __uint_as_float(w & 0xFFFF0000u); }
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const uint32_t l = __bfloat16_as_ushort(__float2bfloat16_rn(lo));
    const uint32_t h = __bfloat16_as_ushort(__float2bfloat16_rn(hi));
    return l | (h << 16);
}
__device__ __forceinline__ void unpack(const uint4& u, float* f) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        f[2 * i] = bf_lo(w[i]);
        f[2 * i + 1] = bf_hi(w[i]);
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// One row per CTA; thread t owns vectors t, t + nt, ..., t + (K-1) nt of the row.
template <int K, bool RESID>
__global__ void __launch_bounds__(1024) ln_row_kernel(Args a) {
    __shared__ float red[2][32];
    const int t = threadIdx.x, nt = blockDim.x;
    const int lane = t & 31, warp = t >> 5, nw = nt >> 5;
    const unsigned row = blockIdx.x;
    const int64_t rb = static_cast<int64_t>(row) * a.cv;

    // The select's index first (one small load), then the row.
    const bool sel = a.index_i64 ? (static_cast<const long long*>(a.index)[row] != 0)
                                 : (static_cast<const int*>(a.index)[row] != 0);
    float v[8 * K];
    if constexpr (RESID) {
        uint4 lx[K], lr[K], lg[K];
#pragma unroll
        for (int k = 0; k < K; ++k) lx[k] = ld_stream(a.x + rb + k * nt + t);
#pragma unroll
        for (int k = 0; k < K; ++k) lr[k] = ld_stream(a.res + rb + k * nt + t);
#pragma unroll
        for (int k = 0; k < K; ++k) lg[k] = ld_stream(a.res_gate + rb + k * nt + t);
#pragma unroll
        for (int k = 0; k < K; ++k) {
            float xf[8], rf[8], gf[8];
            unpack(lx[k], xf);
            unpack(lr[k], rf);
            unpack(lg[k], gf);
#pragma unroll
            for (int i = 0; i < 8; ++i) v[8 * k + i] = fmaf(xf[i], gf[i], rf[i]);
            uint4 o;
            o.x = pack(v[8 * k + 0], v[8 * k + 1]);
            o.y = pack(v[8 * k + 2], v[8 * k + 3]);
            o.z = pack(v[8 * k + 4], v[8 * k + 5]);
            o.w = pack(v[8 * k + 6], v[8 * k + 7]);
            st_out(a.res_out + rb + k * nt + t, o);
        }
    } else {
        uint4 lx[K];
#pragma unroll
        for (int k = 0; k < K; ++k) lx[k] = ld_stream(a.x + rb + k * nt + t);
#pragma unroll
        for (int k = 0; k < K; ++k) unpack(lx[k], v + 8 * k);
    }

    const float n_f = static_cast<float>(a.cv * 8);
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 8 * K; ++i) s += v[i];
    s = warp_sum(s);
    if (lane == 0) red[0][warp] = s;
    __syncthreads();
    float tot = 0.f;
    for (int w = 0; w < nw; ++w) tot += red[0][w];
    const float mean = __fdiv_rn(tot, n_f);

    // The selected modulation rows (L1-cached), issued before the variance's block sum.
    const unsigned b = row / a.L;
    const int m0 = sel ? 3 : 0;
    const uint4* scp = a.mod[m0] + b * a.mod_sb[m0];
    const uint4* shp = a.mod[m0 + 1] + b * a.mod_sb[m0 + 1];
    const uint4* gtp = a.mod[m0 + 2] + b * a.mod_sb[m0 + 2];
    uint4 msc[K], msh[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
        msc[k] = __ldg(scp + k * nt + t);
        msh[k] = __ldg(shp + k * nt + t);
    }

    float q = 0.f;
#pragma unroll
    for (int i = 0; i < 8 * K; ++i) {
        v[i] -= mean;
        q = fmaf(v[i], v[i], q);
    }
    q = warp_sum(q);
    if (lane == 0) red[1][warp] = q;
    __syncthreads();
    float qt = 0.f;
    for (int w = 0; w < nw; ++w) qt += red[1][w];
    const float rstd = rsqrtf(__fdiv_rn(qt, n_f) + a.eps);

#pragma unroll
    for (int k = 0; k < K; ++k) {
        float sc[8], sh[8], o[8];
        unpack(msc[k], sc);
        unpack(msh[k], sh);
#pragma unroll
        for (int i = 0; i < 8; ++i) o[i] = fmaf(v[8 * k + i] * rstd, 1.0f + sc[i], sh[i]);
        uint4 po;
        po.x = pack(o[0], o[1]);
        po.y = pack(o[2], o[3]);
        po.z = pack(o[4], o[5]);
        po.w = pack(o[6], o[7]);
        st_out(a.out + rb + k * nt + t, po);
    }
#pragma unroll
    for (int k = 0; k < K; ++k) st_out(a.gate_out + rb + k * nt + t, __ldg(gtp + k * nt + t));
}

bool dense_blc(const kp_tensor& t, int64_t B, int64_t L, int64_t C) {
    return t.dtype == KP_BF16 && t.rank == 3 && t.shape[0] == B && t.shape[1] == L && t.shape[2] == C &&
           t.stride[2] == 1 && t.stride[1] == C && (B == 1 || t.stride[0] == L * C) && t.data != nullptr &&
           aligned16(t.data);
}

template <bool RESID>
void launch(const Args& a, int k, unsigned rows, int threads, cudaStream_t st) {
    switch (k) {
        case 1: ln_row_kernel<1, RESID><<<rows, threads, 0, st>>>(a); break;
        case 2: ln_row_kernel<2, RESID><<<rows, threads, 0, st>>>(a); break;
        case 3: ln_row_kernel<3, RESID><<<rows, threads, 0, st>>>(a); break;
        default: ln_row_kernel<4, RESID><<<rows, threads, 0, st>>>(a); break;
    }
}

// The new path when the call fits its condition; false (nothing launched) otherwise.
bool try_launch(kp_call* call, void* stream, bool resid) {
    if (call == nullptr || call->abi_version != KP_ABI_VERSION) return false;
    const int n = resid ? 15 : 12;
    if (call->n_tensors != static_cast<uint32_t>(n) || call->n_scalars != 1 || !ranks_valid(call)) return false;
    const int sx = 0, sw = resid ? 3 : 1, smod = resid ? 5 : 3, sidx = resid ? 11 : 9;
    const kp_tensor& x = call->tensors[sx];
    if (x.dtype != KP_BF16 || x.rank != 3) return false;
    const int64_t B = x.shape[0], L = x.shape[1], C = x.shape[2];
    if (B < 1 || L < 1 || C < 8 || C % 8 != 0 || C > 8192 || B * L >= (1ll << 31)) return false;
    // K vectors a thread: the block size nearest V3_THREADS in whole warps that divides C / 8.
    const int cv = static_cast<int>(C / 8);
    int k = 0;
    for (int kk = 1; kk <= 4; ++kk) {
        if (cv % kk != 0) continue;
        const int th = cv / kk;
        if (th % 32 != 0 || th > 1024) continue;
        if (k == 0 || (th >= V3_THREADS ? th - V3_THREADS : V3_THREADS - th) <
                          (cv / k >= V3_THREADS ? cv / k - V3_THREADS : V3_THREADS - cv / k))
            k = kk;
    }
    if (k == 0) return false;
    const int threads = cv / k;
    if (!dense_blc(x, B, L, C)) return false;
    if (call->tensors[sw].dtype != KP_ABSENT || call->tensors[sw + 1].dtype != KP_ABSENT) return false;
    Args a{};
    for (int m = 0; m < 6; ++m) {
        const kp_tensor& t = call->tensors[smod + m];
        if (t.dtype != KP_BF16 || t.rank != 2 || t.shape[1] != C || t.stride[1] != 1 || t.data == nullptr) return false;
        if (t.shape[0] != 1 && t.shape[0] != B) return false;
        const int64_t sb = t.shape[0] == 1 ? 0 : t.stride[0];
        if (!aligned16(t.data) || sb % 8 != 0) return false;
        a.mod[m] = static_cast<const uint4*>(t.data);
        a.mod_sb[m] = sb / 8;
    }
    const kp_tensor& idx = call->tensors[sidx];
    if ((idx.dtype != KP_I32 && idx.dtype != KP_I64) || idx.rank != 2 || idx.shape[0] != B || idx.shape[1] != L ||
        idx.data == nullptr || (L > 1 && idx.stride[1] != 1) || (B > 1 && idx.stride[0] != L))
        return false;
    const kp_tensor& out = call->tensors[resid ? 12 : 10];
    const kp_tensor& gout = call->tensors[resid ? 14 : 11];
    if (!dense_blc(out, B, L, C) || !dense_blc(gout, B, L, C)) return false;
    if (resid) {
        if (!dense_blc(call->tensors[1], B, L, C) || !dense_blc(call->tensors[2], B, L, C) ||
            !dense_blc(call->tensors[13], B, L, C))
            return false;
        a.res = static_cast<const uint4*>(call->tensors[1].data);
        a.res_gate = static_cast<const uint4*>(call->tensors[2].data);
        a.res_out = static_cast<uint4*>(call->tensors[13].data);
    }
    a.x = static_cast<const uint4*>(x.data);
    a.index = idx.data;
    a.index_i64 = idx.dtype == KP_I64;
    a.out = static_cast<uint4*>(out.data);
    a.gate_out = static_cast<uint4*>(gout.data);
    a.L = static_cast<unsigned>(L);
    a.cv = cv;
    a.eps = static_cast<float>(call->scalars[0]);

    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const unsigned rows = static_cast<unsigned>(B * L);
    if (resid) launch<true>(a, k, rows, threads, st);
    else launch<false>(a, k, rows, threads, st);
    snprintf(call->path, KP_PATH_LEN, "%s_k%d_t%d", V3_PATH, k, threads);
    return true;
}

}  // namespace v3

extern "C" {

int32_t kp_fuse_scale_shift_kernel(kp_call* call, void* stream) {
    return v3_baseline_fuse_scale_shift_kernel(call, stream);
}

int32_t kp_fuse_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    if (v3::try_launch(call, stream, false)) return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return v3_baseline_ln_select01(call, stream);
}

int32_t kp_fuse_residual_layernorm_scale_shift_gate_select01_kernel(kp_call* call, void* stream) {
    if (v3::try_launch(call, stream, true)) return cudaGetLastError() == cudaSuccess ? KP_OK : KP_CUDA_ERROR;
    return v3_baseline_residual_ln_select01(call, stream);
}

}  // extern "C"
