// kpilot-parent: v10n sha256 d71abb69c887cb57ae56e671a484f33f76430397a55683fd499ea4d050f3975f
// Candidate v10p for tasks/group_norm_silu: v10n's fused channels-last path in one file over v10i
// (v10i.cu, and through it v10h, v9c, v9, v8, v5 and the baseline, #included whole; v10j-v10n
// are not #included), with two changes from the review of v10k-v10n (NOTES.md):
//
//   1. The fp16/bf16 apply loads its 8 channels' coefficients before its first store. v10k's
//      ck_apply_kernel loaded each channel's {mean, a, b, 0} with a plain load inside its
//      channel loop, and the compiler kept every such load behind the previous channel's store
//      through y (in its SASS, 7 of the 8 coefficient loads wait behind a store: dependent round
//      trips). v8's apply loads all of its coefficients first. ncu of [1,128,5,96,80]: v10n's
//      apply 8.06-8.13 us (20261202T155938Z-62692301) against v10i's (v8's apply) 7.36-7.52 us
//      (20261202T155242Z-662e3ad2). Here the finalizers store {a, b} a channel and the means
//      apart (6 16-byte loads for 8 channels instead of 8), the loads are ld.global.nc (__ldg),
//      and the kernel's launch bound is 7 CTAs a SM (see cp_apply_kernel): v8's fp16 apply's
//      occupancy (72 registers), below v8's bf16 apply (64 registers, 8 CTAs) and v10n's apply
//      (56 registers, 9 CTAs). A trade: with a bound of 8, ptxas gives 64 registers and issues 3 of
//      the 6 coefficient loads after the first store again; with 9, it spills (a review, SASS
//      read here).
//   2. A channels-last call the fused path refuses only because its partials would not fit the
//      fp64 buffers (B*G*chunks > 2^20) goes to v5's entry (v3's transpose and the baseline's
//      statistics), not on to v10i, whose v9_run sends it to v8's try_cl8 (limit 2^22) with
//      v10i's unshifted fp32 statistics and v8's folded apply: the defects v10j-v10n fixed.
//      The review emulated channels-last, G = 128: fp16 [1,2048,8,128,136] (B*G*chunks =
//      1,114,112) with x = 200, 410 of 2048 channels out of tolerance; fp32 [1,1024,8,128,136]
//      with x = 0.3, 662 of 1024.
//
// Everything else is v10n's, in one templated stats kernel instead of v10k/v10l/v10m/v10n's
// four copies of v8's:
//   - fp32 x: v10m's per-thread shift (the thread's first vector), fp64 raw sums rebuilt at the end
//     of the thread's fp32 chain, fp64 CTA reduction (one array, two phases);
//   - fp16/bf16 x within v10n's bound (at most 2^13 / 2^16 elements of a group a CTA): no shift,
//     v8's fp32 CTA reduction, exact for a constant group; beyond the bound: no shift, the fp64
//     CTA reduction (v10m's);
//   - fp64 partials (this file's buffers and counters), fp64 finalizers storing {mean, rstd, w, b}
//     (fp32 x: v8's c8_apply_kernel) or {a, b} (halved for the tanh form) and the mean (fp16/bf16:
//     this file's apply);
//   - v8's grid, chunks, passes, L2 keep, finalizer count and ticket protocol, and try_cl8's
//     conditions (as try_clj to try_cln).
// One host dispatch: channels-last x to try_clp, the partial-buffer refusal to v5, everything else
// to v10i's entry.
// Path: `cl8p_stats_p<passes>_keep<k>_fin<n>_<f32|f64>+<apply>_wc<w>`.
//
// PREDICTION (H200, not measured): every row correct; the fp16/bf16 fused rows at v10n's times or
// faster, the five 8-pass fused rows that v10n ran at 1.05-1.10x v10i's time (run
// 20261202T155938Z-2e969ada) within 3% of v10i's; the fp32 fused rows at v10n's times; every
// other row v10n's.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "kpilot_abi.h"

// v10i, whole, its entry under another symbol (as v10j did).
extern "C" int32_t v10i_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v10i_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v10i.cu"
#pragma nv_diag_default 1306

namespace {

constexpr int64_t kPParts = int64_t(1) << 20;  // fp64 partials a buffer (B * G * chunks), v10j's size
__device__ double gp_psum[kPParts];
__device__ double gp_psq[kPParts];
__device__ unsigned int gp_arrive;  // stats CTAs arrived (reset by the last finalizer)
__device__ unsigned int gp_fin;     // finalizers done (reset by the last one)
// fp16/bf16 coefficients in v8's g8_coef: {a, b} of (b, c) at floats 2 o (o = b C + c), its mean at
// kCpMean + o; the host's B*C*4 <= kC8CoefFloats keeps both inside (2 B C <= kCpMean).
constexpr int64_t kCpMean = kC8CoefFloats / 2;

// v8's c8_accumulate from pass 0 (v10m's cm_accumulate): SHIFT subtracts the thread's first
// vector (set from pass 0, which the caller guarantees is in range); a masked load reads zeros
// (a constant: no load waits on another) and adds 0.
template <typename T, bool CS, bool MASK, bool SHIFT>
__device__ __forceinline__ void cp_accumulate(const uint4* xt, int64_t step, int R, int s0, int passes, int S,
                                              float (&sh)[Vec<T>::N], float (&sum)[Vec<T>::N],
                                              float (&sq)[Vec<T>::N]) {
    constexpr int V = Vec<T>::N, U = C8S_UNROLL;
    for (int p0 = 0; p0 < passes; p0 += U) {
        Vec<T> v[U];
        bool in[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            in[u] = !MASK || (p0 + u < passes && s0 + (p0 + u) * R < S);
            const uint4* a = xt + (p0 + u) * step;
            v[u].raw = make_uint4(0u, 0u, 0u, 0u);
            if (in[u]) v[u].raw = CS ? __ldcs(a) : __ldg(a);
        }
        if (SHIFT && p0 == 0) {
#pragma unroll
            for (int i = 0; i < V; ++i) sh[i] = v[0].get(i);
        }
#pragma unroll
        for (int u = 0; u < U; ++u)
#pragma unroll
            for (int i = 0; i < V; ++i) {
                float xv = SHIFT ? __fsub_rn(v[u].get(i), sh[i]) : v[u].get(i);
                if (SHIFT && MASK && !in[u]) xv = 0.0f;
                sum[i] = __fadd_rn(sum[i], xv);
                sq[i] = __fmaf_rn(xv, xv, sq[i]);
            }
    }
}

// v10k's ck_finalize_rows on this file's partials: fp32 x {mean, rstd, w, b} (v8's apply);
// fp16/bf16 {a, b} (a = rstd w; both halved for the tanh form) and, apart, the mean (the apply
// reads 8 channels' coefficients in 6 16-byte loads, all before its first store).
template <typename T, bool TANH>
__device__ __noinline__ void cp_finalize_rows(const T* __restrict__ w, const T* __restrict__ b, int C, int G, int cpg,
                                              int cpb, int rows, int f, int n_fin, double count, float eps,
                                              double* red) {
    constexpr int NT = C8S_THREADS;
    for (int row = f; row < rows; row += n_fin) {
        const double* ps = gp_psum + static_cast<int64_t>(row) * cpb;
        const double* pq = gp_psq + static_cast<int64_t>(row) * cpb;
        double s = 0.0, q = 0.0;
#pragma unroll 8
        for (int k = threadIdx.x; k < cpb; k += NT) {  // written by other CTAs of this launch: L2
            s += __ldcg(ps + k);
            q += __ldcg(pq + k);
        }
        s = block_sum_d<NT / 32>(s, red);
        q = block_sum_d<NT / 32>(q, red);
        const int bt = row / G, g = row - bt * G;
        const double mean = s / count;
        double var = q / count - mean * mean;
        if (var < 0.0) var = 0.0;
        const double rstd = 1.0 / sqrt(var + static_cast<double>(eps));
        for (int k = threadIdx.x; k < cpg; k += NT) {
            const int c = g * cpg + k;
            const int64_t o = static_cast<int64_t>(bt) * C + c;
            if (sizeof(T) == 4) {
                reinterpret_cast<float4*>(g8_coef)[o] =
                    make_float4(static_cast<float>(mean), static_cast<float>(rstd), to_f(w[c]), to_f(b[c]));
            } else {  // {a, b} at 2 o, the mean at kCpMean + o (cp_apply_kernel's layout)
                const double hf = TANH ? 0.5 : 1.0;
                const double a = rstd * static_cast<double>(to_f(w[c]));
                reinterpret_cast<float2*>(g8_coef)[o] =
                    make_float2(static_cast<float>(hf * a), static_cast<float>(hf * static_cast<double>(to_f(b[c]))));
                g8_coef[kCpMean + o] = static_cast<float>(mean);
            }
        }
    }
}

// v8's stats kernel (grid B * cpb, CTA (b, j) chunk j of batch b) with the statistics of the
// header. ACC float: v8's fp32 CTA reduction (two arrays, one phase); ACC double: fp64 raw sums
// rebuilt from the thread's shift, one array, two phases (v10l/v10m). Both end in fp64 partials.
template <typename T, bool TANH, bool SHIFT, typename ACC>
__global__ void __launch_bounds__(C8S_THREADS, 4)
    cp_stats_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int C, int S, int G,
                    int cpg, int passes, int cpb, int keep_from, int n_fin, double count, float eps) {
    constexpr int NT = C8S_THREADS, V = Vec<T>::N, L = 8;  // L: lanes a group in the reduction
    constexpr bool kF32 = std::is_same<ACC, float>::value;
    static_assert(!(kF32 && SHIFT), "fp32 CTA sums are for unshifted fp16/bf16 within the exactness bound");
    __shared__ double red_raw[V][NT];  // ACC double: one array; float: red_s and red_q in its bytes
    __shared__ double red_d[32];
    __shared__ unsigned int s_ticket;
    const int chunk = blockIdx.x;
    const int bt = chunk / cpb, j = chunk - bt * cpb;
    const int cvn = C / V, R = NT / cvn;  // host: cvn <= NT
    const int tid = threadIdx.x;
    const int cv = tid % cvn, r0 = tid / cvn;
    const int s0 = j * R * passes + r0;
    const bool active = r0 < R && s0 < S;
    const uint4* xt = reinterpret_cast<const uint4*>(x) + (static_cast<int64_t>(bt) * S + s0) * cvn + cv;
    const int64_t step = static_cast<int64_t>(R) * cvn;
    float sum[V], sq[V], sh[V];
#pragma unroll
    for (int i = 0; i < V; ++i) sum[i] = sq[i] = sh[i] = 0.0f;
    int n = 0;  // passes of this thread in range (elements a lane; the fp64 rebuild's only)
    if (active) {
        if constexpr (!kF32) {
            const int left = (S - s0 + R - 1) / R;
            n = left < passes ? left : passes;
        }
        const bool full = passes % C8S_UNROLL == 0 && (j + 1) * R * passes <= S;  // v8's test
        if (chunk >= keep_from) {
            if (full)
                cp_accumulate<T, false, false, SHIFT>(xt, step, R, s0, passes, S, sh, sum, sq);
            else
                cp_accumulate<T, false, true, SHIFT>(xt, step, R, s0, passes, S, sh, sum, sq);
        } else {
            if (full)
                cp_accumulate<T, true, false, SHIFT>(xt, step, R, s0, passes, S, sh, sum, sq);
            else
                cp_accumulate<T, true, true, SHIFT>(xt, step, R, s0, passes, S, sh, sum, sq);
        }
    }
    // Thread tid = r0 * cvn + cv holds channel cv*V + i (idle threads 0). Group g: L lanes, lane l
    // the thread rows l, l + L, ... < R, each over the group's cpg channels in order; then a
    // butterfly over the L lanes (v8's order).
    if constexpr (kF32) {
        float(*red_s)[NT] = reinterpret_cast<float(*)[NT]>(&red_raw[0][0]);
        float(*red_q)[NT] = red_s + V;
#pragma unroll
        for (int i = 0; i < V; ++i) {
            red_s[i][tid] = sum[i];
            red_q[i][tid] = sq[i];
        }
        __syncthreads();
        for (int g0 = 0; g0 < G; g0 += NT / L) {
            const int g = g0 + tid / L, l = tid % L;
            float s = 0.0f, q = 0.0f;
            if (g < G)
                for (int r = l; r < R; r += L)
                    for (int c = g * cpg; c < (g + 1) * cpg; ++c) {
                        const int t = r * cvn + c / V, i = c % V;
                        s = __fadd_rn(s, red_s[i][t]);
                        q = __fadd_rn(q, red_q[i][t]);
                    }
#pragma unroll
            for (int o = L / 2; o > 0; o >>= 1) {
                s = __fadd_rn(s, __shfl_xor_sync(0xffffffffu, s, o));
                q = __fadd_rn(q, __shfl_xor_sync(0xffffffffu, q, o));
            }
            if (l == 0 && g < G) {
                const int64_t o = (static_cast<int64_t>(bt) * G + g) * cpb + j;
                gp_psum[o] = static_cast<double>(s);
                gp_psq[o] = static_cast<double>(q);
            }
        }
    } else {
        for (int phase = 0; phase < 2; ++phase) {
            if (phase == 1) __syncthreads();  // every read of the sums of x done
#pragma unroll
            for (int i = 0; i < V; ++i) {
                const double k = static_cast<double>(sh[i]), sd = static_cast<double>(sum[i]);
                const double nk = static_cast<double>(n) * k;
                red_raw[i][tid] = phase == 0 ? sd + nk : static_cast<double>(sq[i]) + 2.0 * k * sd + nk * k;
            }
            __syncthreads();
            double* out = phase == 0 ? gp_psum : gp_psq;
            for (int g0 = 0; g0 < G; g0 += NT / L) {
                const int g = g0 + tid / L, l = tid % L;
                double s = 0.0;
                if (g < G)
                    for (int r = l; r < R; r += L)
                        for (int c = g * cpg; c < (g + 1) * cpg; ++c) s += red_raw[c % V][r * cvn + c / V];
#pragma unroll
                for (int o = L / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
                if (l == 0 && g < G) out[(static_cast<int64_t>(bt) * G + g) * cpb + j] = s;
            }
        }
    }
    // Arrival and the last n_fin CTAs' finalize: v8's protocol on this file's counters.
    __syncthreads();
    if (tid == 0) {
        __threadfence();
        s_ticket = atomicAdd(&gp_arrive, 1u);
    }
    __syncthreads();
    const unsigned int n_chunks = gridDim.x;
    const unsigned int ticket = s_ticket;
    if (ticket + static_cast<unsigned int>(n_fin) < n_chunks) return;  // not one of the last n_fin
    if (tid == 0) {
        while (ld_acquire(&gp_arrive) < n_chunks) __nanosleep(64);
        __threadfence();
    }
    __syncthreads();
    const int f = static_cast<int>(ticket - (n_chunks - static_cast<unsigned int>(n_fin)));
    const int rows = static_cast<int>(n_chunks / static_cast<unsigned int>(cpb)) * G;  // B * G
    cp_finalize_rows<T, TANH>(w, b, C, G, cpg, cpb, rows, f, n_fin, count, eps, red_d);
    __syncthreads();
    if (tid == 0) {
        __threadfence();
        if (atomicAdd(&gp_fin, 1u) == static_cast<unsigned int>(n_fin) - 1u) {  // every finalizer is past its wait
            atomicExch(&gp_fin, 0u);
            atomicExch(&gp_arrive, 0u);
        }
    }
}

// v8's c8_apply_kernel for fp16/bf16 computing v10k's unfolded (x - mean) a + b, the 8 channels'
// coefficients loaded (ld.global.nc) before the channel loop, as v8 loads its {a, c} (the header,
// 1.). The launch bound's 7 CTAs a SM are v8's apply's occupancy (72 registers); without it ptxas
// held this kernel at 64 registers and issued 3 of the 6 coefficient loads after the first stores
// (SASS read here, sm_90a); with it, all 6 come before the first store.
template <typename T, bool TANH>
__global__ void __launch_bounds__(C8A_THREADS, 7) cp_apply_kernel(const T* __restrict__ x, T* __restrict__ y, int C,
                                                               int S, int wc_log, int n_ct, int n_st, int B) {
    static_assert(sizeof(T) == 2, "fp32 output takes v8's c8_apply_kernel");
    constexpr int V = Vec<T>::N;
    const int cvn = C / V;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int cw = warp & ((1 << wc_log) - 1), sw = warp >> wc_log;
    const unsigned int k = blockIdx.x;
    const int ct = static_cast<int>(k % static_cast<unsigned int>(n_ct));
    const unsigned int rest = k / static_cast<unsigned int>(n_ct);
    const int st = n_st - 1 - static_cast<int>(rest % static_cast<unsigned int>(n_st));
    const int bt = B - 1 - static_cast<int>(rest / static_cast<unsigned int>(n_st));
    const int cv = ((ct << wc_log) + cw) * 4 + (lane & 3);
    const int sb = (((st << (C8A_WLOG - wc_log)) + sw) * 8 + (lane >> 2)) * V;
    const bool ok = cv < cvn && sb < S;  // S % V == 0: the whole block of V rows is in
    const uint4* xp = reinterpret_cast<const uint4*>(x) + (static_cast<int64_t>(bt) * S + sb) * cvn + cv;
    const int64_t ch0 = static_cast<int64_t>(bt) * C + static_cast<int64_t>(cv) * V;  // (b, first channel)
    T* yp = y + ch0 * S + sb;
    // The V channels' {a, b} (V / 2 16-byte loads) and means (V / 4): in the SASS all of them are
    // issued before the first store (4 of x's 8 loads go first).
    const float4* ab4 = reinterpret_cast<const float4*>(g8_coef + 2 * ch0);
    const float4* m4 = reinterpret_cast<const float4*>(g8_coef + kCpMean + ch0);
    float4 ab[V / 2], mm[V / 4];
#pragma unroll
    for (int k2 = 0; k2 < V / 2; ++k2) ab[k2] = ok ? __ldg(ab4 + k2) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int k4 = 0; k4 < V / 4; ++k4) mm[k4] = ok ? __ldg(m4 + k4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    Vec<T> v[V];
#pragma unroll
    for (int r = 0; r < V; ++r) v[r].raw = ld16<true>(xp + static_cast<int64_t>(r) * cvn, ok);
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const float a = (i & 1) ? ab[i / 2].z : ab[i / 2].x;
        const float c = (i & 1) ? ab[i / 2].w : ab[i / 2].y;
        const float4& q = mm[i / 4];
        const float m = (i & 3) == 0 ? q.x : (i & 3) == 1 ? q.y : (i & 3) == 2 ? q.z : q.w;
        uint32_t o[V / 2];
#pragma unroll
        for (int r = 0; r < V; r += 2)
            o[r / 2] = pack2(c8_silu<TANH>(__fsub_rn(v[r].get(i), m), a, c),
                             c8_silu<TANH>(__fsub_rn(v[r + 1].get(i), m), a, c), T());
        st16_cs(yp + static_cast<int64_t>(i) * S, ok, make_uint4(o[0], o[1], o[2], o[3]));
    }
}

// Resident CTAs of one cp_stats_kernel instantiation on the current device (the finalizers'
// wait needs them), cached per device and instantiation as v8's c8_card.
template <typename T, bool SHIFT, typename ACC>
int cp_slots() {
    static int slots[kMaxDevices + 1] = {};
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return 0;
    }
    if (!filled[cur]) {
        filled[cur] = true;
        int sms = 0, per_sm = 0;
        const bool ok =
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, cp_stats_kernel<T, GNS_V8_TANH != 0, SHIFT, ACC>,
                                                          C8S_THREADS, 0) == cudaSuccess;
        cudaGetLastError();
        slots[cur] = ok ? sms * per_sm : 0;
    }
    return slots[cur];
}

enum class Clp { kRan, kRefused, kPartials };

// try_cl8's conditions and launch shapes (as try_clj to try_cln), one stats kernel chosen by type
// and v10n's bound; kPartials: refused only because the partials exceed this file's buffers.
template <typename T>
Clp try_clp(kp_call* call, cudaStream_t s, int32_t* rc) {
    constexpr bool TANH = GNS_V8_TANH != 0;
    constexpr bool kHalf = sizeof(T) == 2;
    const kp_tensor& xt = call->tensors[0];
    if (is_contiguous(xt) || !is_channels_last(xt)) return Clp::kRefused;
    constexpr int V = Vec<T>::N;
    const T* x = static_cast<const T*>(xt.data);
    const T* w = static_cast<const T*>(call->tensors[1].data);
    const T* b = static_cast<const T*>(call->tensors[2].data);
    T* y = static_cast<T*>(call->tensors[3].data);
    const int G = static_cast<int>(call->scalars[0]);
    const float eps = static_cast<float>(call->scalars[1]);
    const int64_t B = xt.shape[0], C = xt.shape[1];
    int64_t S = 1;
    for (int d = 2; d < xt.rank; ++d) S *= xt.shape[d];
    const int64_t cpg = C / G, gs = cpg * S;
    // v9_run's test before try_cl8 (v9c's GNS_V9_MIN_GROUP).
    if (gs < (v9c_fused_passes_at_least_4<T>(B, C, S) ? int64_t(0) : (int64_t(1) << 18))) return Clp::kRefused;
    const int64_t x_bytes = B * C * S * static_cast<int64_t>(sizeof(T));
    if (gs < kLargeGroup && x_bytes < (int64_t(1) << 20)) return Clp::kRefused;  // v7b's domain
    if (C % V != 0 || S % V != 0 || C / V > C8S_THREADS) return Clp::kRefused;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return Clp::kRefused;
    if (B * G > C8_MAX_ROWS) return Clp::kRefused;  // at most 4 rows a finalizer
    if (B * C * 4 > kC8CoefFloats) return Clp::kRefused;
    const C8Card& card = c8_card<T>();
    if (card.sms <= 0) return Clp::kRefused;
    const int64_t cvn = C / V, R = C8S_THREADS / cvn;
    int passes = C8S_MAX_PASSES;
    while (passes > 1 && B * ((S + R * passes - 1) / (R * passes)) < 4 * static_cast<int64_t>(card.sms)) passes /= 2;
    const int64_t cpb = (S + R * passes - 1) / (R * passes), n_chunks = B * cpb;
    if (B * G * cpb > kPParts) return Clp::kPartials;
    // v10n's bound: fp32 CTA sums exact for a constant fp16 (bf16) group up to 2^13 (2^16)
    // elements of a group a CTA.
    const bool f32_sums =
        kHalf && R * passes * cpg <= (std::is_same<T, __half>::value ? (int64_t(1) << 13) : (int64_t(1) << 16));
    int64_t n_fin = B * G < C8_MAX_FIN ? B * G : C8_MAX_FIN;
    if (n_chunks < n_fin) n_fin = n_chunks;
    int slots = 0;
    if constexpr (!kHalf)
        slots = cp_slots<T, true, double>();
    else
        slots = f32_sums ? cp_slots<T, false, float>() : cp_slots<T, false, double>();
    if (2 * n_fin > slots) return Clp::kRefused;  // the finalizers' wait needs the rest resident
    const int64_t chunk_bytes = R * passes * C * static_cast<int64_t>(sizeof(T));
    const int64_t keep = (card.l2_bytes * C8_KEEP_PCT / 100 + chunk_bytes - 1) / chunk_bytes;
    const int64_t keep_from = n_chunks > keep ? n_chunks - keep : 0;
    int wc_log = 0;
    while (wc_log < C8A_WLOG && (int64_t(4) << wc_log) < cvn) ++wc_log;
    const int64_t n_ct = (cvn + (int64_t(4) << wc_log) - 1) / (int64_t(4) << wc_log);
    const int64_t st_rows = int64_t(8) * V * ((C8A_THREADS / 32) >> wc_log);
    const int64_t n_st = (S + st_rows - 1) / st_rows;
    if (n_ct * n_st * B >= (int64_t(1) << 31)) return Clp::kRefused;
    const unsigned int n_stats = static_cast<unsigned int>(n_chunks);
    const int Ci = static_cast<int>(C), Si = static_cast<int>(S), cpgi = static_cast<int>(cpg);
    const int cpbi = static_cast<int>(cpb), kf = static_cast<int>(keep_from), nf = static_cast<int>(n_fin);
    const double count = static_cast<double>(gs);
    const unsigned int n_apply = static_cast<unsigned int>(n_ct * n_st * B);
    if constexpr (!kHalf) {
        cp_stats_kernel<T, TANH, true, double>
            <<<n_stats, C8S_THREADS, 0, s>>>(x, w, b, Ci, Si, G, cpgi, passes, cpbi, kf, nf, count, eps);
        c8_apply_kernel<T, TANH><<<n_apply, C8A_THREADS, 0, s>>>(x, y, Ci, Si, wc_log, static_cast<int>(n_ct),
                                                                 static_cast<int>(n_st), static_cast<int>(B));
    } else {
        if (f32_sums)
            cp_stats_kernel<T, TANH, false, float>
                <<<n_stats, C8S_THREADS, 0, s>>>(x, w, b, Ci, Si, G, cpgi, passes, cpbi, kf, nf, count, eps);
        else
            cp_stats_kernel<T, TANH, false, double>
                <<<n_stats, C8S_THREADS, 0, s>>>(x, w, b, Ci, Si, G, cpgi, passes, cpbi, kf, nf, count, eps);
        cp_apply_kernel<T, TANH><<<n_apply, C8A_THREADS, 0, s>>>(x, y, Ci, Si, wc_log, static_cast<int>(n_ct),
                                                                 static_cast<int>(n_st), static_cast<int>(B));
    }
    snprintf(call->path, KP_PATH_LEN, "cl8p_stats_p%d_keep%d_fin%d_%s+%s_wc%d", passes,
             static_cast<int>(n_chunks - keep_from), static_cast<int>(n_fin), f32_sums ? "f32" : "f64",
             !kHalf ? "cl8_apply_exact" : (TANH ? "cl8p_apply_tanh" : "cl8p_apply_fma_exact"), 1 << wc_log);
    *rc = launched(call);
    return Clp::kRan;
}

}  // namespace

extern "C" int32_t v10p_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v10p_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call) && !is_contiguous(call->tensors[0]) && is_channels_last(call->tensors[0])) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const Clp got = dt == KP_F16    ? try_clp<__half>(call, s, &rc)
                        : dt == KP_BF16 ? try_clp<__nv_bfloat16>(call, s, &rc)
                                        : try_clp<float>(call, s, &rc);
        if (got == Clp::kRan) return rc;
        // v5's entry: C++ name kp_group_norm_silu in this file, symbol gns_v5_group_norm_silu (v8.cu).
        if (got == Clp::kPartials) return kp_group_norm_silu(call, stream_ptr);
    }
    return v10i_group_norm_silu(call, stream_ptr);
}
