// kpilot-parent: v12 sha256 d47f722eaae04cbc7065553e648d136692fa110b950a3b962b12de8a5927e2f4
// Candidate v16 for tasks/group_norm_silu: v12 (#included whole, its entry under another symbol)
// plus v15's slab path for the large contiguous fp16/bf16 rows (v15: commit 9505297, left the
// tree) with consecutive slabs overlapped by programmatic dependent launch (PDL): ONE idea, the
// one NOTES' v14/v15 section leaves untried.
//
// Why. v14 and v15 (a stats launch and an apply launch a slab of whole groups, the apply re-reading
// x from the L2) were correct and 1.15-1.55x v12's time; ncu of [1,128,17,256,80] (run
// 20261203T130609Z-750d8a35, NVIDIA H200) has each 25 MB stats kernel at 42-46% of DRAM peak
// against the baseline's one 89 MB stats kernel at 75%: a short kernel pays several us of ramp-up
// and drain, twice a slab. With PDL the next kernel's CTAs start while the previous kernel drains.
//
// The change (try_cslab3; v15's kernels with three PTX instructions added, v15's conditions with
// slabs of at most 20 MiB, not 24, since two slabs now share the L2): the zeroing kernel and slab
// 0's stats launch as before; every later launch carries cudaLaunchAttributeProgrammaticStream-
// Serialization. Ordering, slab k:
//   - stats k: griddepcontrol.launch_dependents at its start (apply k may be launched and wait),
//     griddepcontrol.wait at its end (so stats k ends only after apply k-1 has ended);
//   - apply k: griddepcontrol.wait first (stats k complete, its fp64 atomics visible), then
//     griddepcontrol.launch_dependents (stats k+1 may start and read slab k+1 from DRAM while
//     apply k re-reads slab k from the L2 and writes y).
// Each kernel's end implies its predecessor's (the apply waits at its start, the stats at its
// end), so the call's last kernel ending means every kernel of the call has: nothing of the call
// runs after it (the worker's lingering check would say so), and the next call's zeroing kernel
// (an ordinary launch) starts after all of it. No deadlock: a kernel is launched early only once
// every CTA of the one before it is resident, and it waits only on that one.
// Known limits: v14's (cs_acc one per process: one stream at a time).
//
// PREDICTION (H200, not measured): correct on every row (v15's arithmetic). Each slab's apply
// runs beside the next slab's stats, so DRAM sees one read of x and one write of y, with one ramp
// a call instead of two a slab: the 10 contiguous rows at 0.75-0.95x v12's time (v15 1.15-1.50x),
// the largest [1,256,17,256,256] 330-400 us (v12 425, v15 638.5). If the early CTAs sit resident
// and waiting on the SMs the stats need, or the two slabs do not stay in the L2 together, the
// gain shrinks toward v15's numbers; a row slower than v12 means the overlap did not happen.
// Path: `cslab3_g<groups a slab>_n<slabs>_s<stats CTAs>_a<apply CTAs>` on the rows it takes.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t v12_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v12_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v12.cu"
#pragma nv_diag_default 1306

namespace {

constexpr int kCsMaxUnits = 8192;  // groups a call (B * G), one {sum, sq} pair each
constexpr int kCsMaxSlabs = 64;    // launches a call: 1 + 2 a slab
constexpr int64_t kCsMinX = int64_t(64) << 20;
constexpr int64_t kCsMaxSlab = int64_t(20) << 20;  // two slabs in the L2 at once
constexpr int64_t kCsMinS = 16384;                 // a batch of 8 vectors a thread spans <= 2 channels
__device__ double cs_acc[2 * kCsMaxUnits];         // {sum, sum of squares} of group u at 2u, 2u + 1

__global__ void cslab3_zero_kernel(int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) cs_acc[i] = 0.0;
}

// PTX of programmatic dependent launch (sm_90): a no-op in a kernel not launched with the attribute.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" :::); }

}  // namespace

namespace {

constexpr int kC3Threads = 256;
constexpr int kC3Batch = 8;     // 16-byte vectors a thread loads before using them
constexpr int kC3MaxCh = 8;     // channels an apply CTA may span
constexpr int64_t kC3Align = 32;  // range boundaries in vectors (512 bytes)

// Range i of n over [lo, hi), boundaries rounded down to kC3Align vectors (the last ends at hi).
__device__ __forceinline__ void c3_range(int64_t lo, int64_t hi, int64_t i, int64_t n, int64_t* a, int64_t* b) {
    const int64_t len = hi - lo;
    *a = i == 0 ? lo : lo + (len * i / n) / kC3Align * kC3Align;
    *b = i + 1 == n ? hi : lo + (len * (i + 1) / n) / kC3Align * kC3Align;
}

template <typename T>
__global__ void __launch_bounds__(kC3Threads) cslab3_stats_kernel(const T* __restrict__ x, int64_t unit_vecs,
                                                                 int64_t v_lo, int64_t v_hi) {
    constexpr int V = Vec<T>::N;  // 8
    __shared__ double red[kC3Threads / 32][2];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const uint4* xp = reinterpret_cast<const uint4*>(x);
    // The next kernel (this slab's apply) may be launched now: it waits for this grid's end.
    pdl_launch_dependents();
    int64_t r0, r1;
    c3_range(v_lo, v_hi, blockIdx.x, gridDim.x, &r0, &r1);
    while (r0 < r1) {
        const int64_t u = r0 / unit_vecs;
        const int64_t seg_end = (u + 1) * unit_vecs < r1 ? (u + 1) * unit_vecs : r1;
        double ds = 0.0, dq = 0.0;
        for (int64_t t = r0; t < seg_end; t += int64_t(kC3Threads) * kC3Batch) {
            uint4 raw[kC3Batch];
#pragma unroll
            for (int p = 0; p < kC3Batch; ++p) {
                const int64_t idx = t + static_cast<int64_t>(p) * kC3Threads + tid;
                raw[p] = ld16<false>(xp + idx, idx < seg_end);  // masked: reads 0, adds nothing
            }
            float s[V], q[V];
#pragma unroll
            for (int i = 0; i < V; ++i) s[i] = q[i] = 0.0f;
#pragma unroll
            for (int p = 0; p < kC3Batch; ++p) {
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
            for (int w = 0; w < kC3Threads / 32; ++w) {
                cs += red[w][0];
                cq += red[w][1];
            }
            atomicAdd(&cs_acc[2 * u], cs);
            atomicAdd(&cs_acc[2 * u + 1], cq);
        }
        __syncthreads();  // red is written again by the next segment
        r0 = seg_end;
    }
    // This grid ends only after the kernel before it (the previous slab's apply) has: so the
    // call's last kernel ending means every kernel of the call has.
    pdl_wait();
}

template <typename T, bool TANH>
__global__ void __launch_bounds__(kC3Threads)
    cslab3_apply_kernel(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ w, const T* __restrict__ b,
                        int C, int cpg, int64_t S, int64_t channels, int64_t v_lo, int64_t v_hi, double count,
                        float eps) {
    constexpr int V = Vec<T>::N;
    __shared__ float coef[3][kC3MaxCh];
    const int tid = threadIdx.x;
    // This slab's statistics complete and visible; then the next slab's stats may start beside us.
    pdl_wait();
    pdl_launch_dependents();
    int64_t r0, r1;
    c3_range(v_lo, v_hi, static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x, gridDim.x, &r0, &r1);
    if (r0 >= r1) return;
    const int64_t ch_first = r0 * V / S;
    if (tid < kC3MaxCh) {
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
    const int64_t per_batch = int64_t(kC3Threads) * kC3Batch;
    const int64_t n_batches = (r1 - r0 + per_batch - 1) / per_batch;
    for (int64_t bi = n_batches - 1; bi >= 0; --bi) {
        const int64_t t = r0 + bi * per_batch;
        Vec<T> v[kC3Batch];
#pragma unroll
        for (int p = 0; p < kC3Batch; ++p) {
            const int64_t idx = t + static_cast<int64_t>(p) * kC3Threads + tid;
            v[p].raw = ld16<true>(xp + idx, idx < r1);
        }
        const int64_t ch_a = t * V / S;        // the batch's first channel; 16384 elements <= S: at most two
        const int k0 = static_cast<int>(ch_a - ch_first);
        const int64_t next = (ch_a + 1) * S;  // the first element of the batch's second channel
#pragma unroll
        for (int p = 0; p < kC3Batch; ++p) {
            const int64_t idx = t + static_cast<int64_t>(p) * kC3Threads + tid;
            const int k = k0 + (idx * V >= next ? 1 : 0);
            const int kk = k < kC3MaxCh ? k : kC3MaxCh - 1;  // past the range only when masked
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

struct C3Card {
    int stats_slots, apply_slots;  // CTAs resident at once (0: the path is off)
};
template <typename T>
const C3Card& c3_card() {
    // One entry per device, as v5's cards.
    static C3Card cards[kMaxDevices + 1] = {};
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];
    }
    C3Card& card = cards[cur];
    if (!filled[cur]) {
        filled[cur] = true;
        int sms = 0, ps = 0, pa = 0;
        const bool ok =
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ps, cslab3_stats_kernel<T>, kC3Threads, 0) ==
                cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&pa, cslab3_apply_kernel<T, GNS_V8_TANH != 0>, kC3Threads,
                                                          0) == cudaSuccess;
        cudaGetLastError();
        card.stats_slots = ok ? sms * ps : 0;
        card.apply_slots = ok ? sms * pa : 0;
    }
    return card;
}

// Launches kernel k with the PDL attribute (or without, for the chain's first).
template <typename... Params, typename... Args>
cudaError_t c3_launch(bool pdl, void (*kernel)(Params...), unsigned int grid, cudaStream_t s, Args... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(kC3Threads);
    cfg.dynamicSmemBytes = 0;
    cfg.stream = s;
    cfg.attrs = pdl ? attr : nullptr;
    cfg.numAttrs = pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
}

template <typename T>
bool try_cslab3(kp_call* call, cudaStream_t s, int32_t* rc) {
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
    const C3Card& card = c3_card<T>();
    if (card.stats_slots <= 0 || card.apply_slots <= 0) return false;
    const int64_t unit_vecs = cpg * S / V;
    // An apply CTA's range: at most ceil(slab / n) + kC3Align vectors; its channels must fit coef.
    const int64_t slab_vecs = per_slab * unit_vecs;
    const int64_t n_stats = card.stats_slots, n_apply = card.apply_slots;
    const int64_t range_elems = ((slab_vecs + n_apply - 1) / n_apply + kC3Align) * V;
    if (range_elems / S + 2 > kC3MaxCh) return false;
    const double count = static_cast<double>(cpg * S);
    cslab3_zero_kernel<<<1, 256, 0, s>>>(static_cast<int>(2 * units));
    cudaError_t e = cudaSuccess;
    for (int64_t u0 = 0; u0 < units && e == cudaSuccess; u0 += per_slab) {
        const int64_t nu = units - u0 < per_slab ? units - u0 : per_slab;
        const int64_t v_lo = u0 * unit_vecs, v_hi = (u0 + nu) * unit_vecs;
        e = c3_launch(u0 > 0, cslab3_stats_kernel<T>, static_cast<unsigned int>(n_stats), s, x, unit_vecs, v_lo, v_hi);
        if (e == cudaSuccess)
            e = c3_launch(true, cslab3_apply_kernel<T, TANH>, static_cast<unsigned int>(n_apply), s, x, y, w, b,
                          static_cast<int>(C), static_cast<int>(cpg), S, B * C, v_lo, v_hi, count, eps);
    }
    snprintf(call->path, KP_PATH_LEN, "cslab3_g%d_n%d_s%d_a%d", static_cast<int>(per_slab), static_cast<int>(slabs),
             static_cast<int>(n_stats), static_cast<int>(n_apply));
    if (e != cudaSuccess) cudaGetLastError();  // the launch error said once, through rc
    *rc = e == cudaSuccess ? launched(call) : KP_CUDA_ERROR;
    return true;
}

}  // namespace

extern "C" int32_t v16_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

// v12's entry, with the overlapped contiguous slab path tried first.
extern "C" int32_t v16_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call) && is_contiguous(call->tensors[0])) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        if (dt == KP_F16 && try_cslab3<__half>(call, s, &rc)) return rc;
        if (dt == KP_BF16 && try_cslab3<__nv_bfloat16>(call, s, &rc)) return rc;
    }
    return v12_group_norm_silu(call, stream_ptr);
}
