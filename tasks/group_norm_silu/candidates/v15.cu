// kpilot-parent: v14 sha256 f395b814af05718d7094388aae7cba374a6ff292e8141b43413298aff27dd841
// Candidate v15 for tasks/group_norm_silu: v14 (#included whole, its entry under another symbol)
// with its slab kernels' grids sized to the card: ONE idea, v14's slab schedule without its wave
// tails.
//
// Why. v14 (run 20261203T124853Z-b4951cfe, NVIDIA H200) was correct and 1.15-1.55x slower than
// v12 on its 10 production rows. Its grids were shaped by the data, not the card: the stats kernel
// one CTA a 64 KB chunk, the apply one a 32 KB chunk. On the two rows it lost most on
// ([1,256,17,256,256] 1.55x, [1,128,17,256,256] 1.51x; 17.8 MB slabs) a slab is 272 stats CTAs
// and 544 apply CTAs, just over one wave of each kernel's resident CTAs if those are about 264 and
// 528 (not measured: the occupancy is what this file asks the runtime for), so each kernel runs a
// second, almost empty wave, 64 times a call. The rows of 4-8 slabs sit at 1.3-1.4 waves.
//
// The change (try_cslab2: v14's rows and conditions, plus at most 8 channels an apply CTA): per
// slab, the stats kernel runs exactly as many CTAs as are resident at once (the runtime's
// occupancy, cached per device) and each takes an equal range of the slab's 16-byte vectors
// (rounded to 32 vectors), split at group boundaries; a thread loads 8 vectors a batch (all 8
// issued first), folds its 8 lanes' fp32 chains (8 elements each) into fp64 after each batch,
// and a CTA reduces in fp64 and adds one atomicAdd pair a group segment. The apply runs as many
// CTAs as are resident, each an equal range of the slab walked down (the stats walked it up);
// its channels' mean, a and c (v14's fp64 finalize) are built once a CTA into shared memory by
// one thread a channel, and each batch of 8 vectors (16384 elements, at most two channels) finds
// its two with one division a thread. Arithmetic otherwise v14's (v11's statistics, v10p's apply).
//
// PREDICTION (H200, not measured): correct on every row. Each kernel of a slab runs one full wave:
// the stats kernel at 3.5 TB/s of DRAM, the apply writing at 4.0 TB/s while re-reading from the
// L2, 1.5 us of ramp and tail each. [1,256,17,256,256] 32 x (5.1 + 4.5 + 3) = 403 us (v14 661,
// v12 426 in the same lease), [1,256,9,128,128] 4 x (6.7 + 5.9 + 3) = 62 us (v14 83.5, v12 63.0):
// between 0.95x and 1.06x of v12 on the 10 rows; v14's loss gone, no gain beyond noise unless the
// apply's re-read costs less than modelled. If a row stays more than 1.1x v12's, the per-launch
// cost (ramp, tail, the launch gap) is what the slab schedule pays and NOTES says so.
// Path: `cslab2_g<groups a slab>_n<slabs>_s<stats CTAs>_a<apply CTAs>` on the rows it takes.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t v14_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v14_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v14.cu"
#pragma nv_diag_default 1306

namespace {

constexpr int kC2Threads = 256;
constexpr int kC2Batch = 8;     // 16-byte vectors a thread loads before using them
constexpr int kC2MaxCh = 8;     // channels an apply CTA may span
constexpr int64_t kC2Align = 32;  // range boundaries in vectors (512 bytes)

// Range i of n over [lo, hi), boundaries rounded down to kC2Align vectors (the last ends at hi).
__device__ __forceinline__ void c2_range(int64_t lo, int64_t hi, int64_t i, int64_t n, int64_t* a, int64_t* b) {
    const int64_t len = hi - lo;
    *a = i == 0 ? lo : lo + (len * i / n) / kC2Align * kC2Align;
    *b = i + 1 == n ? hi : lo + (len * (i + 1) / n) / kC2Align * kC2Align;
}

template <typename T>
__global__ void __launch_bounds__(kC2Threads) cslab2_stats_kernel(const T* __restrict__ x, int64_t unit_vecs,
                                                                 int64_t v_lo, int64_t v_hi) {
    constexpr int V = Vec<T>::N;  // 8
    __shared__ double red[kC2Threads / 32][2];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const uint4* xp = reinterpret_cast<const uint4*>(x);
    int64_t r0, r1;
    c2_range(v_lo, v_hi, blockIdx.x, gridDim.x, &r0, &r1);
    while (r0 < r1) {
        const int64_t u = r0 / unit_vecs;
        const int64_t seg_end = (u + 1) * unit_vecs < r1 ? (u + 1) * unit_vecs : r1;
        double ds = 0.0, dq = 0.0;
        for (int64_t t = r0; t < seg_end; t += int64_t(kC2Threads) * kC2Batch) {
            uint4 raw[kC2Batch];
#pragma unroll
            for (int p = 0; p < kC2Batch; ++p) {
                const int64_t idx = t + static_cast<int64_t>(p) * kC2Threads + tid;
                raw[p] = ld16<false>(xp + idx, idx < seg_end);  // masked: reads 0, adds nothing
            }
            float s[V], q[V];
#pragma unroll
            for (int i = 0; i < V; ++i) s[i] = q[i] = 0.0f;
#pragma unroll
            for (int p = 0; p < kC2Batch; ++p) {
                Vec<T> v;
                v.raw = raw[p];
#pragma unroll
                for (int i = 0; i < V; ++i) {
                    const float e = v.get(i);
                    s[i] = __fadd_rn(s[i], e);
                    q[i] = __fmaf_rn(e, e, q[i]);
                }
            }
#pragma unroll
            for (int i = 0; i < V; ++i) {
                ds += static_cast<double>(s[i]);
                dq += static_cast<double>(q[i]);
            }
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
            for (int w = 0; w < kC2Threads / 32; ++w) {
                cs += red[w][0];
                cq += red[w][1];
            }
            atomicAdd(&cs_acc[2 * u], cs);
            atomicAdd(&cs_acc[2 * u + 1], cq);
        }
        __syncthreads();  // red is written again by the next segment
        r0 = seg_end;
    }
}

template <typename T, bool TANH>
__global__ void __launch_bounds__(kC2Threads)
    cslab2_apply_kernel(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ w, const T* __restrict__ b,
                        int C, int cpg, int64_t S, int64_t channels, int64_t v_lo, int64_t v_hi, double count,
                        float eps) {
    constexpr int V = Vec<T>::N;
    __shared__ float coef[3][kC2MaxCh];
    const int tid = threadIdx.x;
    int64_t r0, r1;
    c2_range(v_lo, v_hi, static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x, gridDim.x, &r0, &r1);
    if (r0 >= r1) return;
    const int64_t ch_first = r0 * V / S;
    if (tid < kC2MaxCh) {
        const int64_t chg = ch_first + tid;
        if (chg < channels && chg * S < r1 * V) {
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
    const uint4* xp = reinterpret_cast<const uint4*>(x);
    uint4* yp = reinterpret_cast<uint4*>(y);
    // Batches walk the range down too (the L2's likeliest survivors first).
    const int64_t per_batch = int64_t(kC2Threads) * kC2Batch;
    const int64_t n_batches = (r1 - r0 + per_batch - 1) / per_batch;
    for (int64_t bi = n_batches - 1; bi >= 0; --bi) {
        const int64_t t = r0 + bi * per_batch;
        Vec<T> v[kC2Batch];
#pragma unroll
        for (int p = 0; p < kC2Batch; ++p) {
            const int64_t idx = t + static_cast<int64_t>(p) * kC2Threads + tid;
            v[p].raw = ld16<true>(xp + idx, idx < r1);
        }
        const int64_t ch_a = t * V / S;        // the batch's first channel; 16384 elements <= S: at most two
        const int k0 = static_cast<int>(ch_a - ch_first);
        const int64_t next = (ch_a + 1) * S;  // the first element of the batch's second channel
#pragma unroll
        for (int p = 0; p < kC2Batch; ++p) {
            const int64_t idx = t + static_cast<int64_t>(p) * kC2Threads + tid;
            const int k = k0 + (idx * V >= next ? 1 : 0);
            const int kk = k < kC2MaxCh ? k : kC2MaxCh - 1;  // past the range only when masked
            const float m = coef[0][kk], a = coef[1][kk], c = coef[2][kk];
            uint32_t o[V / 2];
#pragma unroll
            for (int i = 0; i < V; i += 2)
                o[i / 2] = pack2(c8_silu<TANH>(__fsub_rn(v[p].get(i), m), a, c),
                                 c8_silu<TANH>(__fsub_rn(v[p].get(i + 1), m), a, c), T());
            st16_cs(yp + idx, idx < r1, make_uint4(o[0], o[1], o[2], o[3]));
        }
    }
}

struct C2Card {
    int stats_slots, apply_slots;  // CTAs resident at once (0: the path is off)
};
template <typename T>
const C2Card& c2_card() {
    // One entry per device, as v5's cards.
    static C2Card cards[kMaxDevices + 1] = {};
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];
    }
    C2Card& card = cards[cur];
    if (!filled[cur]) {
        filled[cur] = true;
        int sms = 0, ps = 0, pa = 0;
        const bool ok =
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ps, cslab2_stats_kernel<T>, kC2Threads, 0) ==
                cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&pa, cslab2_apply_kernel<T, GNS_V8_TANH != 0>, kC2Threads,
                                                          0) == cudaSuccess;
        cudaGetLastError();
        card.stats_slots = ok ? sms * ps : 0;
        card.apply_slots = ok ? sms * pa : 0;
    }
    return card;
}

template <typename T>
bool try_cslab2(kp_call* call, cudaStream_t s, int32_t* rc) {
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
    const C2Card& card = c2_card<T>();
    if (card.stats_slots <= 0 || card.apply_slots <= 0) return false;
    const int64_t unit_vecs = cpg * S / V;
    // An apply CTA's range: at most ceil(slab / n) + kC2Align vectors; its channels must fit coef.
    const int64_t slab_vecs = per_slab * unit_vecs;
    const int64_t n_stats = card.stats_slots, n_apply = card.apply_slots;
    const int64_t range_elems = ((slab_vecs + n_apply - 1) / n_apply + kC2Align) * V;
    if (range_elems / S + 2 > kC2MaxCh) return false;
    const double count = static_cast<double>(cpg * S);
    cslab_zero_kernel<<<1, 256, 0, s>>>(static_cast<int>(2 * units));
    for (int64_t u0 = 0; u0 < units; u0 += per_slab) {
        const int64_t nu = units - u0 < per_slab ? units - u0 : per_slab;
        const int64_t v_lo = u0 * unit_vecs, v_hi = (u0 + nu) * unit_vecs;
        cslab2_stats_kernel<T><<<static_cast<unsigned int>(n_stats), kC2Threads, 0, s>>>(x, unit_vecs, v_lo, v_hi);
        cslab2_apply_kernel<T, TANH><<<static_cast<unsigned int>(n_apply), kC2Threads, 0, s>>>(
            x, y, w, b, static_cast<int>(C), static_cast<int>(cpg), S, B * C, v_lo, v_hi, count, eps);
    }
    snprintf(call->path, KP_PATH_LEN, "cslab2_g%d_n%d_s%d_a%d", static_cast<int>(per_slab), static_cast<int>(slabs),
             static_cast<int>(n_stats), static_cast<int>(n_apply));
    *rc = launched(call);
    return true;
}

}  // namespace

extern "C" int32_t v15_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

// v12's entry, with the balanced contiguous slab path tried first (v14's unbalanced one is not).
extern "C" int32_t v15_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call) && is_contiguous(call->tensors[0])) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        if (dt == KP_F16 && try_cslab2<__half>(call, s, &rc)) return rc;
        if (dt == KP_BF16 && try_cslab2<__nv_bfloat16>(call, s, &rc)) return rc;
    }
    return v12_group_norm_silu(call, stream_ptr);
}
