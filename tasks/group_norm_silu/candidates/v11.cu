// kpilot-parent: v10p sha256 465fa608de7bf6c8a47627aa29f1e88668a34bc2483cbac8ebecbce1e1683489
// Candidate v11 for tasks/group_norm_silu: v10p (#included whole, its entry under another symbol)
// plus a slab-by-slab path for the large channels-last fp16/bf16 rows, to measure what NOTES.md
// ("The channels-last lower bound holds only for whole-position kernels") leaves open.
//
// Why: every channels-last kernel so far (v7-v10p) reads every channel of a position together,
// so no group's statistics are complete before all of x has been read, and what the L2 cannot
// keep is read from DRAM a second time (DRAM bytes >= 3X - K). In a channels-last x a position's
// C channels are contiguous and a group's cpg channels are a run inside them, so a column of 64
// bytes of every position (32 fp16 / bf16 channels) holds whole groups whenever cpg divides 32.
// Taking one such slab at a time (its statistics read it from DRAM, its apply reads it again
// while it is still in the L2, then the next slab) reads x from DRAM once.
//
// The path (try_slab, B == 1, fp16/bf16, channels-last, C % 32 == 0, 32 % cpg == 0, S % 8 == 0,
// x and y 16-byte aligned, a slab of 64 B x S between 4 MiB and 28 MiB): for each slab k two
// launches,
//   - slab_stats_kernel: 256 threads, 64 positions a pass (4 threads of 16 bytes a position),
//     16 passes; each thread sums its 8 channels in fp32 over at most 16 elements a channel
//     (unshifted, as v10n's fp16 chains: exact for a constant fp16/bf16 group, an outlier stays in
//     one 16-element chain), then in fp64: warp butterflies over the positions, shared memory over
//     the warps, and one fp64 atomicAdd a group and CTA into sl_acc (sum and sum of squares by
//     group), zeroed by one 1-CTA launch at the call's start (the previous call's applies, their
//     last readers, have finished: one stream).
//   - slab_apply_kernel: v10p's cp_apply_kernel's thread layout on the slab (4 threads of 8
//     channels a position, 8 positions a thread, 256 positions a CTA), CTAs walking the positions
//     down; each thread issues its 8 loads of x (ld.global.cs: the last use, evict first), then
//     threads 0-31 build the slab's 32 channels' mean, a = rstd w and b from sl_acc in fp64 (mean
//     = sum / n, var = max(sq / n - mean^2, 0), rstd = 1 / sqrt(var + eps), as v10p's finalizer)
//     into shared memory, and y is stored with st.global.cs, v10p's unfolded (x - mean) a + b and
//     v8's tanh SiLU.
// Known and not fixed (a review, CPU): the unshifted fp32 sums of squares round down on offset
// data (emulated: N(300, 1) fp16 uses 0.81 of the tolerance on statistics alone, N(500, 1) 2.6);
// v10p's fp32-sum path has the same chains (read, not emulated) and no row has such data. Only
// C <= 512 (16 slabs) is taken.
// Everything else is v10p's.
//
// PREDICTION (H200, not measured): correct on every row (the statistics are v10n's fp16 chains
// summed in fp64; the apply is v10p's arithmetic). Speed is the experiment. Model a slab as its
// stats read at 3.5 TB/s, its y written at 4.2 TB/s and 1.5 us a launch: if the apply's re-read
// hits the L2, [1,128,17,256,80] CL (89.2 MB of x, 4 slabs of 22.3 MB) takes about 4 x (6.4 + 5.3
// + 3) = 59 us against v10p's 91.76 (run 20261202T182531Z-e8a85ecb); if it misses, 4 x (6.4 +
// 10.5 + 3) = 80 us. The model is optimistic: v10p moves its 3X bytes at about 68% of copy.
// Path: `slab64_n<slabs>_p16_<kb>KB` on the rows it takes, v10p's elsewhere.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t v10p_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v10p_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v10p.cu"
#pragma nv_diag_default 1306

namespace {

constexpr int kSlThreads = 256;           // stats CTA: 64 positions a pass, 4 threads a position
constexpr int kSlPasses = 16;             // positions a thread: at most 16 elements a channel chain
constexpr int kSlMaxGroups = 4096;        // accumulators (G <= kSlMaxGroups)
constexpr int kSlChannels = 32;           // channels a slab (64 bytes of fp16 / bf16)
constexpr int kSlMaxSlabs = 16;           // slabs a call (C <= 512)
constexpr int64_t kSlMinBytes = int64_t(4) << 20;
constexpr int64_t kSlMaxBytes = int64_t(28) << 20;
__device__ double sl_acc[2 * kSlMaxGroups];  // {sum, sum of squares} of group g at 2g, 2g + 1

// Zeroes the call's accumulators before its first slab (the previous call's applies, their last
// readers, have finished: one stream).
__global__ void slab_zero_kernel(int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) sl_acc[i] = 0.0;
}

template <typename T>
__global__ void __launch_bounds__(kSlThreads) slab_stats_kernel(const T* __restrict__ x, int C, int S, int cpg,
                                                               int c0) {
    constexpr int V = Vec<T>::N;  // 8
    __shared__ double red[kSlThreads / 32][kSlChannels][2];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int cv = tid & 3;  // the thread's 16 bytes of the slab's 64
    const int g_lo = c0 / cpg;
    const int64_t p0 = static_cast<int64_t>(blockIdx.x) * (kSlThreads / 4) * kSlPasses + (tid >> 2);
    const uint4* xp = reinterpret_cast<const uint4*>(x + c0) + cv;
    const int64_t step = C / V;  // 16-byte vectors a position
    float s[V], q[V];
#pragma unroll
    for (int i = 0; i < V; ++i) s[i] = q[i] = 0.0f;
    uint4 raw[kSlPasses];
#pragma unroll
    for (int p = 0; p < kSlPasses; ++p) {  // written as all loads first; ptxas keeps fewer in flight
        const int64_t pos = p0 + static_cast<int64_t>(p) * (kSlThreads / 4);
        raw[p] = ld16<false>(xp + pos * step, pos < S);
    }
#pragma unroll
    for (int p = 0; p < kSlPasses; ++p) {
        Vec<T> v;
        v.raw = raw[p];
#pragma unroll
        for (int i = 0; i < V; ++i) {
            const float e = v.get(i);
            s[i] = __fadd_rn(s[i], e);
            q[i] = __fmaf_rn(e, e, q[i]);
        }
    }
    // fp64 from here: lanes with the same cv (lane & 3) hold the same 8 channels.
    double ds[V], dq[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
        ds[i] = static_cast<double>(s[i]);
        dq[i] = static_cast<double>(q[i]);
#pragma unroll
        for (int o = 4; o < 32; o <<= 1) {
            ds[i] += __shfl_xor_sync(0xffffffffu, ds[i], o);
            dq[i] += __shfl_xor_sync(0xffffffffu, dq[i], o);
        }
    }
    if (lane < 4) {
#pragma unroll
        for (int i = 0; i < V; ++i) {
            red[warp][lane * V + i][0] = ds[i];
            red[warp][lane * V + i][1] = dq[i];
        }
    }
    __syncthreads();
    if (tid < kSlChannels) {  // one channel a thread, then the channel's group
        double cs = 0.0, cq = 0.0;
#pragma unroll
        for (int w = 0; w < kSlThreads / 32; ++w) {
            cs += red[w][tid][0];
            cq += red[w][tid][1];
        }
        // the group's cpg channels are threads g * cpg .. (cpg a power of two dividing 32)
        for (int o = 1; o < cpg; o <<= 1) {
            cs += __shfl_xor_sync(0xffffffffu, cs, o);
            cq += __shfl_xor_sync(0xffffffffu, cq, o);
        }
        if (tid % cpg == 0) {
            const int g = g_lo + tid / cpg;
            atomicAdd(&sl_acc[2 * g], cs);
            atomicAdd(&sl_acc[2 * g + 1], cq);
        }
    }
}

// The slab's apply: v10p's cp_apply_kernel's thread layout on one 64-byte column (4 threads of 8
// channels a position, 8 positions a thread, 256 positions a CTA), CTAs walking the positions
// down (the stats kernel walked them up: the last positions read are the likeliest still in the
// L2, as v8's apply). The x loads go first; meanwhile threads 0-31 build one channel's mean, a and
// c each in fp64 (v10p's finalizer: mean = sum / n, var = max(sq / n - mean^2, 0), a = rstd w, c
// = b, both halved for the tanh form) into shared memory.
template <typename T, bool TANH>
__global__ void __launch_bounds__(C8A_THREADS) slab_apply_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                                 const T* __restrict__ w, const T* __restrict__ b,
                                                                 int C, int S, int cpg, int c0, double count,
                                                                 float eps) {
    constexpr int V = Vec<T>::N;
    __shared__ float coef[3][kSlChannels];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int cv = lane & 3;
    const int blk = static_cast<int>(gridDim.x - 1 - blockIdx.x);
    const int sb = ((blk * (C8A_THREADS / 32) + warp) * 8 + (lane >> 2)) * V;
    const bool ok = sb < S;  // S % V == 0: the whole block of V positions is in
    const int ch0 = c0 + cv * V;
    const uint4* xp = reinterpret_cast<const uint4*>(x + ch0) + static_cast<int64_t>(sb) * (C / V);
    Vec<T> v[V];
#pragma unroll
    for (int r = 0; r < V; ++r) v[r].raw = ld16<true>(xp + static_cast<int64_t>(r) * (C / V), ok);
    if (threadIdx.x < kSlChannels) {
        const int ch = c0 + static_cast<int>(threadIdx.x), g = ch / cpg;
        const double hf = TANH ? 0.5 : 1.0;
        const double mean = __ldcg(&sl_acc[2 * g]) / count;
        double var = __ldcg(&sl_acc[2 * g + 1]) / count - mean * mean;
        if (var < 0.0) var = 0.0;
        const double rstd = 1.0 / sqrt(var + static_cast<double>(eps));
        coef[0][threadIdx.x] = static_cast<float>(mean);
        coef[1][threadIdx.x] = static_cast<float>(hf * rstd * static_cast<double>(to_f(w[ch])));
        coef[2][threadIdx.x] = static_cast<float>(hf * static_cast<double>(to_f(b[ch])));
    }
    __syncthreads();
    T* yp = y + static_cast<int64_t>(ch0) * S + sb;
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const float m = coef[0][cv * V + i], a = coef[1][cv * V + i], c = coef[2][cv * V + i];
        uint32_t o[V / 2];
#pragma unroll
        for (int r = 0; r < V; r += 2)
            o[r / 2] = pack2(c8_silu<TANH>(__fsub_rn(v[r].get(i), m), a, c),
                             c8_silu<TANH>(__fsub_rn(v[r + 1].get(i), m), a, c), T());
        st16_cs(yp + static_cast<int64_t>(i) * S, ok, make_uint4(o[0], o[1], o[2], o[3]));
    }
}

template <typename T>
bool try_slab(kp_call* call, cudaStream_t s, int32_t* rc) {
    constexpr bool TANH = GNS_V8_TANH != 0;
    constexpr int V = Vec<T>::N;
    const kp_tensor& xt = call->tensors[0];
    if (is_contiguous(xt) || !is_channels_last(xt)) return false;
    const T* x = static_cast<const T*>(xt.data);
    const T* w = static_cast<const T*>(call->tensors[1].data);
    const T* b = static_cast<const T*>(call->tensors[2].data);
    T* y = static_cast<T*>(call->tensors[3].data);
    const int G = static_cast<int>(call->scalars[0]);
    const float eps = static_cast<float>(call->scalars[1]);
    const int64_t B = xt.shape[0], C = xt.shape[1];
    int64_t S = 1;
    for (int d = 2; d < xt.rank; ++d) S *= xt.shape[d];
    const int64_t cpg = C / G;
    if (B != 1 || C % kSlChannels != 0 || kSlChannels % cpg != 0 || S % V != 0 || G > kSlMaxGroups) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    const int64_t slab_bytes = S * kSlChannels * static_cast<int64_t>(sizeof(T));
    if (slab_bytes < kSlMinBytes || slab_bytes > kSlMaxBytes) return false;
    if (C / kSlChannels > kSlMaxSlabs) return false;  // launches a call: 1 + 2 a slab
    const int64_t per_cta = int64_t(kSlThreads / 4) * kSlPasses;
    const int64_t n_stats = (S + per_cta - 1) / per_cta;
    const int64_t n_apply = (S + int64_t(8) * V * (C8A_THREADS / 32) - 1) / (int64_t(8) * V * (C8A_THREADS / 32));
    if (n_stats >= (int64_t(1) << 31) || n_apply >= (int64_t(1) << 31) || C * S >= (int64_t(1) << 31)) return false;
    const int Ci = static_cast<int>(C), Si = static_cast<int>(S), cpgi = static_cast<int>(cpg);
    const double count = static_cast<double>(cpg * S);
    const int slabs = Ci / kSlChannels;
    slab_zero_kernel<<<1, 256, 0, s>>>(2 * G);
    for (int k = 0; k < slabs; ++k) {
        const int c0 = k * kSlChannels;
        slab_stats_kernel<T><<<static_cast<unsigned int>(n_stats), kSlThreads, 0, s>>>(x, Ci, Si, cpgi, c0);
        slab_apply_kernel<T, TANH>
            <<<static_cast<unsigned int>(n_apply), C8A_THREADS, 0, s>>>(x, y, w, b, Ci, Si, cpgi, c0, count, eps);
    }
    snprintf(call->path, KP_PATH_LEN, "slab64_n%d_p%d_%dKB", slabs, kSlPasses, static_cast<int>(slab_bytes >> 10));
    *rc = launched(call);
    return true;
}

}  // namespace

extern "C" int32_t v11_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v11_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call)) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        if (dt == KP_F16 && try_slab<__half>(call, s, &rc)) return rc;
        if (dt == KP_BF16 && try_slab<__nv_bfloat16>(call, s, &rc)) return rc;
    }
    return v10p_group_norm_silu(call, stream_ptr);
}
