// kpilot-parent: v12 sha256 d47f722eaae04cbc7065553e648d136692fa110b950a3b962b12de8a5927e2f4
// Candidate v14 for tasks/group_norm_silu: v12 (#included whole, its entry under another symbol)
// plus a slab-by-slab path for the large contiguous fp16/bf16 rows: the untried half of NOTES'
// "Left to do" 3 ("a launch pair per slab was not tried" for the contiguous rows).
//
// Why. On a contiguous x of more than the L2, every path so far reads x from DRAM twice: the
// statistics read all of it, then the apply reads all of it again (the baseline's three launches,
// and v5's one-launch L2 ordering only where its ticket schedule paid). DRAM bytes >= 2X + Y = 3X
// against copy's 2X: at most 67% of copy, and the large contiguous rows sit at 53-64% (v12 run
// 20261203T093734Z-8fc93cff, NVIDIA H200). In a contiguous x a group (b, g) is one run of cpg * S
// elements, and consecutive groups are consecutive runs, so a slab of whole groups is one range.
// Taking one slab at a time (its statistics read it from DRAM, its apply reads it again while it is
// still in the L2 and writes its y, then the next slab) reads x from DRAM once: DRAM >= 2X.
//
// The path (try_cslab: contiguous fp16/bf16 x of 64 MiB or more, S % 8 == 0, S >= 16384, x and y
// 16-byte aligned, B * G <= 8192, a group of at most 24 MiB and at most 64 slabs): slabs of as many
// whole groups as fit in 24 MiB; one launch zeroes the fp64 accumulators, then per slab
//   - cslab_stats_kernel: grid (chunks of a group, groups of the slab), 256 threads, 16 passes of
//     one 16-byte vector a thread (64 KB a CTA, coalesced 512 B a warp and pass), all 16 loads
//     issued before use; each thread sums its 8 lanes separately in fp32 (chains of 16 elements,
//     as v11's and v10n's fp16 chains: exact for a constant group, an outlier stays in one chain),
//     then fp64 from there: warp butterflies, shared memory, one fp64 atomicAdd a group and CTA
//     into cs_acc (sum, sum of squares by group).
//   - cslab_apply_kernel: 256 threads, 8 vectors a thread (16384 elements a CTA, so with S >= 16384
//     a CTA spans at most two channels), CTAs walking the slab down (the stats walked it up: the
//     last read is the likeliest still in the L2); each thread issues its 8 loads (ld.global.cs,
//     the last use) first, then threads 0-1 build the CTA's two channels' mean, a = rstd w and
//     c = b in fp64 from cs_acc (mean = sum / n, var = max(sq / n - mean^2, 0), rstd =
//     1 / sqrt(var + eps): v10p's finalizer), halved for v8's tanh SiLU, into shared memory; y is
//     stored with st.global.cs.
// Known limits (as v5's and v11's): cs_acc is one per process, so two calls in flight on two
// streams at once would share it (kpilot's worker runs one stream); the unshifted fp32 sums of
// squares round down on strongly offset data, as v11's and v10p's fp32 chains do (no row has such
// data on this path: every row it takes is uniform(-2, 2)).
// Everything else is v12's.
//
// PREDICTION (H200, not measured): correct on every row (v11's statistics arithmetic, v10p's
// apply arithmetic). Rows it takes (production, contiguous, x >= 64 MiB; groups a slab x slabs,
// slab MB): [1,256,17,256,256] 1x32 (17.8), [1,128,17,256,256] 2x16 (17.8), [1,512,9,128,128]
// 5x7 (23.6), [1,256,17,96,256] 3x11 (20.1), [1,256,5,256,256] 4x8 (21.0), [1,256,17,256,80]
// 4x8 (22.3), [1,128,17,96,256] 7x5 (23.4), [1,256,9,128,128] 10x4 (23.6), [1,128,17,256,80]
// 9x4 (25.1), [1,128,5,256,256] 9x4 (23.6). Model a slab as its stats read at 3.5 TB/s, its
// apply writing y at 4.0 TB/s while it re-reads x from the L2, and 1 us of ramp and tail a
// launch: [1,256,17,256,256] 32 x (5.1 + 4.5 + 2) = 371 us against the baseline's 424 (1.14x,
// 72% of copy); rows of 4-8 slabs gain less (their fixed cost is a larger share). If the apply
// misses the L2, 32 x (5.1 + 9 + 2) = 515 us: slower than the baseline, and the gate says so.
// Path: `cslab_g<groups a slab>_n<slabs>_<slab KB>KB` on the rows it takes, v12's elsewhere.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t v12_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v12_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v12.cu"
#pragma nv_diag_default 1306

namespace {

constexpr int kCsThreads = 256;
constexpr int kCsPasses = 16;      // 16-byte vectors a stats thread: fp32 chains of 16 elements
constexpr int kCsApplyVecs = 8;    // 16-byte vectors an apply thread
constexpr int kCsMaxUnits = 8192;  // groups a call (B * G), one {sum, sq} pair each
constexpr int kCsMaxSlabs = 64;    // launches a call: 1 + 2 a slab
constexpr int64_t kCsMinX = int64_t(64) << 20;
constexpr int64_t kCsMaxSlab = int64_t(24) << 20;
constexpr int64_t kCsMinS = int64_t(kCsThreads) * kCsApplyVecs * 8;  // an apply CTA's elements
__device__ double cs_acc[2 * kCsMaxUnits];  // {sum, sum of squares} of group u at 2u, 2u + 1

// Zeroes the call's accumulators before its first slab (the previous call's applies, their last
// readers, have finished: one stream).
__global__ void cslab_zero_kernel(int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) cs_acc[i] = 0.0;
}

// CTA (blockIdx.x, blockIdx.y): vectors [blockIdx.x * 4096, + 4096) of group u0 + blockIdx.y.
template <typename T>
__global__ void __launch_bounds__(kCsThreads) cslab_stats_kernel(const T* __restrict__ x, int64_t unit_vecs, int u0) {
    constexpr int V = Vec<T>::N;  // 8
    __shared__ double red[kCsThreads / 32][2];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int u = u0 + static_cast<int>(blockIdx.y);
    const uint4* xp = reinterpret_cast<const uint4*>(x) + static_cast<int64_t>(u) * unit_vecs;
    const int64_t v0 = static_cast<int64_t>(blockIdx.x) * kCsThreads * kCsPasses + tid;
    float s[V], q[V];
#pragma unroll
    for (int i = 0; i < V; ++i) s[i] = q[i] = 0.0f;
    uint4 raw[kCsPasses];
#pragma unroll
    for (int p = 0; p < kCsPasses; ++p) {
        const int64_t idx = v0 + static_cast<int64_t>(p) * kCsThreads;
        raw[p] = ld16<false>(xp + idx, idx < unit_vecs);  // masked: reads 0, adds nothing
    }
#pragma unroll
    for (int p = 0; p < kCsPasses; ++p) {
        Vec<T> v;
        v.raw = raw[p];
#pragma unroll
        for (int i = 0; i < V; ++i) {
            const float e = v.get(i);
            s[i] = __fadd_rn(s[i], e);
            q[i] = __fmaf_rn(e, e, q[i]);
        }
    }
    double ds = 0.0, dq = 0.0;
#pragma unroll
    for (int i = 0; i < V; ++i) {
        ds += static_cast<double>(s[i]);
        dq += static_cast<double>(q[i]);
    }
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        ds += __shfl_xor_sync(0xffffffffu, ds, o);
        dq += __shfl_xor_sync(0xffffffffu, dq, o);
    }
    if (lane == 0) {
        red[warp][0] = ds;
        red[warp][1] = dq;
    }
    __syncthreads();
    if (tid == 0) {
        double cs = 0.0, cq = 0.0;
#pragma unroll
        for (int w = 0; w < kCsThreads / 32; ++w) {
            cs += red[w][0];
            cq += red[w][1];
        }
        atomicAdd(&cs_acc[2 * u], cs);
        atomicAdd(&cs_acc[2 * u + 1], cq);
    }
}

// The slab's apply over vectors [v_lo, v_hi) of x (whole groups), CTAs walking it down.
template <typename T, bool TANH>
__global__ void __launch_bounds__(kCsThreads)
    cslab_apply_kernel(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ w, const T* __restrict__ b,
                       int C, int cpg, int64_t S, int64_t channels, int64_t v_lo, int64_t v_hi, double count,
                       float eps) {
    constexpr int V = Vec<T>::N;
    __shared__ float coef[3][2];
    const int tid = threadIdx.x;
    const int64_t blk = static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x;
    const int64_t cta0 = v_lo + blk * (kCsThreads * kCsApplyVecs);
    const uint4* xp = reinterpret_cast<const uint4*>(x);
    Vec<T> v[kCsApplyVecs];
#pragma unroll
    for (int r = 0; r < kCsApplyVecs; ++r) {
        const int64_t idx = cta0 + static_cast<int64_t>(r) * kCsThreads + tid;
        v[r].raw = ld16<true>(xp + idx, idx < v_hi);
    }
    const int64_t ch0 = cta0 * V / S;  // the channel (over B * C) of the CTA's first element
    if (tid < 2) {
        const int64_t chg = ch0 + tid;
        if (chg < channels) {
            const int c = static_cast<int>(chg % C);
            const int64_t u = chg / cpg;
            const double hf = TANH ? 0.5 : 1.0;
            const double mean = __ldcg(&cs_acc[2 * u]) / count;
            double var = __ldcg(&cs_acc[2 * u + 1]) / count - mean * mean;
            if (var < 0.0) var = 0.0;
            const double rstd = 1.0 / sqrt(var + static_cast<double>(eps));
            coef[0][tid] = static_cast<float>(mean);
            coef[1][tid] = static_cast<float>(hf * rstd * static_cast<double>(to_f(w[c])));
            coef[2][tid] = static_cast<float>(hf * static_cast<double>(to_f(b[c])));
        }
    }
    __syncthreads();
    const int64_t next = (ch0 + 1) * S;  // the first element of the CTA's second channel
    uint4* yp = reinterpret_cast<uint4*>(y);
#pragma unroll
    for (int r = 0; r < kCsApplyVecs; ++r) {
        const int64_t idx = cta0 + static_cast<int64_t>(r) * kCsThreads + tid;
        const int k = idx * V >= next ? 1 : 0;  // S % V == 0: a vector is in one channel
        const float m = coef[0][k], a = coef[1][k], c = coef[2][k];
        uint32_t o[V / 2];
#pragma unroll
        for (int i = 0; i < V; i += 2)
            o[i / 2] = pack2(c8_silu<TANH>(__fsub_rn(v[r].get(i), m), a, c),
                             c8_silu<TANH>(__fsub_rn(v[r].get(i + 1), m), a, c), T());
        st16_cs(yp + idx, idx < v_hi, make_uint4(o[0], o[1], o[2], o[3]));
    }
}

template <typename T>
bool try_cslab(kp_call* call, cudaStream_t s, int32_t* rc) {
    constexpr bool TANH = GNS_V8_TANH != 0;
    constexpr int V = Vec<T>::N;
    const kp_tensor& xt = call->tensors[0];
    if (!is_contiguous(xt)) return false;
    const T* x = static_cast<const T*>(xt.data);
    const T* w = static_cast<const T*>(call->tensors[1].data);
    const T* b = static_cast<const T*>(call->tensors[2].data);
    T* y = static_cast<T*>(call->tensors[3].data);
    const int64_t G = static_cast<int64_t>(call->scalars[0]);
    const float eps = static_cast<float>(call->scalars[1]);
    const int64_t B = xt.shape[0], C = xt.shape[1];
    int64_t S = 1;
    for (int d = 2; d < xt.rank; ++d) S *= xt.shape[d];
    const int64_t cpg = C / G, units = B * G;
    if (S % V != 0 || S < kCsMinS || units > kCsMaxUnits) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    const int64_t x_bytes = B * C * S * static_cast<int64_t>(sizeof(T));
    const int64_t unit_bytes = cpg * S * static_cast<int64_t>(sizeof(T));
    if (x_bytes < kCsMinX || unit_bytes > kCsMaxSlab) return false;
    const int64_t per_slab = kCsMaxSlab / unit_bytes;
    const int64_t slabs = (units + per_slab - 1) / per_slab;
    if (slabs > kCsMaxSlabs) return false;
    const int64_t unit_vecs = cpg * S / V;
    const int64_t chunks = (unit_vecs + kCsThreads * kCsPasses - 1) / (kCsThreads * kCsPasses);
    const int64_t per_apply = int64_t(kCsThreads) * kCsApplyVecs;
    if (chunks >= (int64_t(1) << 31) || per_slab > 65535) return false;
    const double count = static_cast<double>(cpg * S);
    cslab_zero_kernel<<<1, 256, 0, s>>>(static_cast<int>(2 * units));
    for (int64_t u0 = 0; u0 < units; u0 += per_slab) {
        const int64_t nu = units - u0 < per_slab ? units - u0 : per_slab;
        cslab_stats_kernel<T><<<dim3(static_cast<unsigned int>(chunks), static_cast<unsigned int>(nu)), kCsThreads,
                                0, s>>>(x, unit_vecs, static_cast<int>(u0));
        const int64_t v_lo = u0 * unit_vecs, v_hi = (u0 + nu) * unit_vecs;
        const int64_t n_apply = (v_hi - v_lo + per_apply - 1) / per_apply;
        cslab_apply_kernel<T, TANH><<<static_cast<unsigned int>(n_apply), kCsThreads, 0, s>>>(
            x, y, w, b, static_cast<int>(C), static_cast<int>(cpg), S, B * C, v_lo, v_hi, count, eps);
    }
    snprintf(call->path, KP_PATH_LEN, "cslab_g%d_n%d_%dKB", static_cast<int>(per_slab), static_cast<int>(slabs),
             static_cast<int>((per_slab * unit_bytes) >> 10));
    *rc = launched(call);
    return true;
}

}  // namespace

extern "C" int32_t v14_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

// v12's entry, with the contiguous slab path tried first.
extern "C" int32_t v14_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call) && is_contiguous(call->tensors[0])) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        if (dt == KP_F16 && try_cslab<__half>(call, s, &rc)) return rc;
        if (dt == KP_BF16 && try_cslab<__nv_bfloat16>(call, s, &rc)) return rc;
    }
    return v12_group_norm_silu(call, stream_ptr);
}
