// kpilot-parent: v7b sha256 eb45f1cd4697c9498ed8cb9ef87e105f39377d0af68a089897f0a8e223cb0730
// Candidate v8 for tasks/group_norm_silu: v7b with a faster fused channels-last path; every other
// shape runs v5, as in v7b. Three changes to v7's three-launch path (stats, finalize, apply):
//
//   1. The finalize is folded into the stats kernel. Each stats CTA takes an arrival ticket
//      (atomicAdd) once its partials are written; the last n_fin = min(B*G, 32, chunks) CTAs to
//      arrive wait (spin on the counter, thread 0) until every chunk has arrived, then each
//      computes mean/rstd of its rows (b, g) from the row's partials in float64 (as v7's
//      cls_finalize_kernel, fixed order) and, per channel, the apply's coefficients. The last
//      finalizer resets both counters, so every call and every graph replay starts at zero.
//      Spinning is safe: at most n_fin CTAs spin while at most n_fin - 1 are yet to finish, and
//      the host checks that 2 * n_fin CTAs of the kernel fit on the card at once.
//      Why: ncu of v7b on the 570 MB channels-last row (run 20261201T055935Z-69eb8918) has
//      cls_finalize at 6.6-6.8 us a call, plus a launch gap, about 3% of the row (and more of the
//      small rows v7b added).
//   2. The apply's math: per channel (b, c) the finalizers store a = rstd*w and c = b - mean*a
//      (float64, rounded once to fp32), so y = fma(x, a, c) is ONE FMA; for fp16/bf16 output
//      (GNS_V8_TANH = 1) with a/2, c/2 stored, h = y/2 and silu(y) = h + h*tanh(h) =
//      fma(h, tanh.approx.f32(h), h): one MUFU op an element instead of v7's ex2 + div.full (two
//      MUFU ops plus the division's fix-up), and 0 where h < -4.25 (y < -8.5; |silu| < 1.8e-3
//      there), which bounds the error of tanh.approx's worst case for large negative y (NOTES.md,
//      v8: worst case 0.70 of the fp16 tolerance at y = -8.5 over all y, CPU model at the PTX
//      bound 2^-10.987). fp32 output keeps v7's exact norm_silu (same mean, rstd, w, b).
//      GNS_V8_TANH = 0 (v8b) keeps the FMA fold but v7's exact sigmoid (ex2 + div.full): the knob
//      isolates the tanh form.
//   3. The apply without shared memory: v7's transpose tile (17 KB shared, a barrier, one 2-byte
//      shared load an element: ncu of v7b cla_apply has not_selected and math_pipe_throttle as
//      its top stalls after long_scoreboard, 63% achieved occupancy) is replaced by a register
//      transpose: each thread loads V rows (spatial positions) x one 16-byte channel vector of x
//      (V 16-byte loads, all issued before the first use), computes the V x V block, and stores
//      V 16-byte vectors of y, one a channel, each V consecutive spatial positions. A warp's lane
//      (q, m) = (lane % 4, lane / 4): 4 consecutive channel vectors x 8 blocks of V rows, so each
//      load instruction reads 64 contiguous bytes of 8 rows and each store instruction writes
//      128 contiguous bytes of 4 channels. CTA: 4 warps, WC of them across channel vectors (the
//      smallest power of two covering C/(4V), at most 4), 4/WC along spatial; fp16 C = 128: a
//      CTA reads 64 rows x 256 B = 16 KB contiguous of x. No shared memory; ptxas: 72 registers
//      fp16, 64 bf16, 36 fp32, no spills: 7 CTAs (28 warps) a SM fp16, each thread 128 bytes of
//      x in flight (112 KB a SM; v7's apply: 96 KB). CTA order as v7: channel tile fastest,
//      spatial tiles and batches counted down (the reverse of the stats pass, which keeps its
//      last chunks at normal L2 priority).
// The stats kernel is v7's (same chunks, passes, L2 keep, per-thread fp32 sums of x - shift)
// except its group reduction in shared memory, which walks rows then the group's channels
// (no integer division in the loop; v7 divided by cpg per item).
//
// Symbols as v7: v5's entry compiled from candidates/v5.cu under gns_v5_group_norm_silu (a GNU asm
// label on its declaration); this file's entry exported as kp_group_norm_silu. v7.cu is not
// #included (it exports its own kp_group_norm_silu); its chunk loop (cls_accumulate) is repeated
// here as c8_accumulate, unchanged.
//
// Conditions (else v5, whole, as v7b): v7b's (a call the baseline accepts, x channels-last and not
// contiguous, C/G x S >= 2^18 or x >= 1 MiB, C and S multiples of V = 16 / element size,
// C/V <= 256, x and y 16-byte aligned, B*G*chunks within the partial buffers, the device in v5's
// card range), plus B*G <= 128 (at most 4 rows a finalizer), B*C*(2 or 4) floats of
// coefficients <= 2 Mi, and 2 * n_fin stats CTAs resident at once.
//
// PREDICTION (H200, not measured; v7b run 20261201T054642Z-30d48551 and its ncu
// 20261201T055935Z-69eb8918; copy 4.26 TB/s; NOTES.md, v8): the finalize kernel and its launch gap
// gone (5-8 us a row, 1-2 us of folded finalize back), the stats 0-5% faster, the apply at 0.79-0.91
// of v7's 171 us on the 570 MB row (135-155 us, 3.5-4.0 TB/s):
//   [1,128,17,256,256] CL 570 MB: 272.9 -> 224-254 us (53-60% of copy), 1.08-1.22x over v7b
//   [1,128,17,96,256]  CL 214 MB: 113.5 ->  90-104 us (49-56%),          1.09-1.26x
//   [1,128,5,256,256]  CL 168 MB:  90.7 ->  71-82 us  (48-56%),          1.10-1.29x
//   [1,256,9,128,128]  CL 151 MB:  81.8 ->  63-74 us  (48-56%),          1.10-1.30x
//   [1,128,17,256,80]  CL 178 MB:  97.3 ->  76-89 us  (47-55%),          1.10-1.28x
//   [1,128,17,96,80]   CL  67 MB:  43.1 ->  31-38 us  (42-52%),          1.14-1.41x
// the 42-63 MB CL rows 5-9 us faster, the 3.3-20 MB CL rows 3-6 us faster; every other row v5's.
// Traffic lower bound (v7's): DRAM bytes >= 3X - K (K <= 31 MB kept in the L2): 193.6 us on the
// 570 MB row at copy speed, 69% of copy at best.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include "kpilot_abi.h"

// v5, whole, its entry under another symbol (see the header).
extern "C" int32_t kp_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v5_group_norm_silu");
#include "v5.cu"

// 1: fp16/bf16 SiLU as fma(h, tanh.approx(h), h), h = y/2 (v8); 0: v7's exact sigmoid (v8b).
#ifndef GNS_V8_TANH
#define GNS_V8_TANH 1
#endif

namespace {

constexpr int C8S_THREADS = 256;    // stats CTA (v7's CLS_THREADS)
constexpr int C8S_UNROLL = 8;       // 16-byte loads in flight a thread (v7's)
constexpr int C8S_MAX_PASSES = 16;  // 4 KB passes a stats chunk (v7's)
constexpr int C8A_THREADS = 128;    // apply CTA: 4 warps
constexpr int C8A_WLOG = 2;         // log2(warps an apply CTA)
constexpr int C8_KEEP_PCT = 50;     // share of the L2 the stats pass's last chunks keep (v7's)
constexpr int C8_MAX_FIN = 32;      // finalizer CTAs at most
constexpr int C8_MAX_ROWS = 4 * C8_MAX_FIN;
constexpr int64_t kC8CoefFloats = int64_t(1) << 21;
constexpr float kC8Clip = 4.25f;  // h = y/2 below -kC8Clip: silu = 0 (tanh form only)

__device__ unsigned int g8_arrive;  // stats CTAs arrived (reset by the last finalizer)
__device__ unsigned int g8_fin;     // finalizers done (reset by the last one)
// Per (b, c): fp16/bf16 {a, c} (halved for the tanh form), fp32 {mean, rstd, w, b}.
__device__ __align__(16) float g8_coef[kC8CoefFloats];

__device__ __forceinline__ float tanh_approx(float x) {
    float y;
    asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// silu of y = fma(x, a, c) for fp16/bf16 output. TANH: a, c are halved, h = y/2,
// silu(y) = y * (1 + tanh(y/2)) / 2 = fma(h, tanh(h), h). Else v7's sigmoid form (norm_silu).
template <bool TANH>
__device__ __forceinline__ float c8_silu(float x, float a, float c) {
    if (TANH) {
        const float h = __fmaf_rn(x, a, c);
        const float o = __fmaf_rn(h, tanh_approx(h), h);
        return h < -kC8Clip ? 0.0f : o;
    } else {
        const float y = __fmaf_rn(x, a, c);
        const float e = ex2_approx(__fmul_rn(__fsub_rn(0.0f, y), 1.44269502f));
        return __fmul_rn(y, div_full(1.0f, __fadd_rn(e, 1.0f)));
    }
}

__device__ __forceinline__ uint32_t pack2(float lo, float hi, __half) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}
__device__ __forceinline__ uint32_t pack2(float lo, float hi, __nv_bfloat16) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

// v7's cls_accumulate, unchanged (v7.cu cannot be #included: it exports kp_group_norm_silu).
template <typename T, bool CS, bool MASK>
__device__ __forceinline__ void c8_accumulate(const uint4* xt, int64_t step, int R, int s0, int passes, int S,
                                              const float (&sh)[Vec<T>::N], uint4 shv, float (&sum)[Vec<T>::N],
                                              float (&sq)[Vec<T>::N]) {
    constexpr int V = Vec<T>::N, U = C8S_UNROLL;
    for (int p0 = 0; p0 < passes; p0 += U) {
        Vec<T> v[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const bool in = !MASK || (p0 + u < passes && s0 + (p0 + u) * R < S);
            const uint4* a = xt + (p0 + u) * step;
            if (MASK) {
                v[u].raw = shv;
                if (in) v[u].raw = CS ? __ldcs(a) : __ldg(a);
            } else {
                v[u].raw = CS ? __ldcs(a) : __ldg(a);
            }
        }
#pragma unroll
        for (int u = 0; u < U; ++u)
#pragma unroll
            for (int i = 0; i < V; ++i) {
                const float xv = __fsub_rn(v[u].get(i), sh[i]);
                sum[i] = __fadd_rn(sum[i], xv);
                sq[i] = __fmaf_rn(xv, xv, sq[i]);
            }
    }
}

// The shift of group g of batch bt: x[bt, spatial 0, channel g*cpg] (v7's cl_shift).
template <typename T>
__device__ __forceinline__ float c8_shift(const T* x, int64_t bt, int C, int S, int g, int cpg) {
    return to_f(x[bt * C * S + static_cast<int64_t>(g) * cpg]);
}

// Finalizer f of n_fin: rows (b, g) = f, f + n_fin, ... of B*G. Each row: its cpb partials summed
// in float64 (fixed order), mean = shift + E[d], rstd = 1 / sqrt(max(E[d^2] - E[d]^2, 0) + eps) in
// float64 (v7's cls_finalize_kernel), then the coefficients of the row's channels to g8_coef.
template <typename T, bool TANH>
__device__ __noinline__ void c8_finalize_rows(const T* __restrict__ x, const T* __restrict__ w,
                                              const T* __restrict__ b, int C, int S, int G, int cpg, int cpb,
                                              int rows, int f, int n_fin, double count, float eps, double* red) {
    constexpr int NT = C8S_THREADS;
    for (int row = f; row < rows; row += n_fin) {
        const float* ps = g_partial_sum + static_cast<int64_t>(row) * cpb;
        const float* pq = g_partial_sq + static_cast<int64_t>(row) * cpb;
        double s = 0.0, q = 0.0;
#pragma unroll 8
        for (int k = threadIdx.x; k < cpb; k += NT) {  // written by other CTAs of this launch: L2
            s += __ldcg(ps + k);
            q += __ldcg(pq + k);
        }
        s = block_sum_d<NT / 32>(s, red);
        q = block_sum_d<NT / 32>(q, red);
        const int bt = row / G, g = row - bt * G;
        const double md = s / count;
        double var = q / count - md * md;
        if (var < 0.0) var = 0.0;
        const double mean = static_cast<double>(c8_shift(x, bt, C, S, g, cpg)) + md;
        const double rstd = 1.0 / sqrt(var + static_cast<double>(eps));
        for (int k = threadIdx.x; k < cpg; k += NT) {
            const int c = g * cpg + k;
            const int64_t o = static_cast<int64_t>(bt) * C + c;
            if (sizeof(T) == 4) {
                reinterpret_cast<float4*>(g8_coef)[o] =
                    make_float4(static_cast<float>(mean), static_cast<float>(rstd), to_f(w[c]), to_f(b[c]));
            } else {
                const double a = rstd * static_cast<double>(to_f(w[c]));
                const double cc = static_cast<double>(to_f(b[c])) - mean * a;
                const double hf = TANH ? 0.5 : 1.0;
                reinterpret_cast<float2*>(g8_coef)[o] = make_float2(static_cast<float>(hf * a), static_cast<float>(hf * cc));
            }
        }
    }
}

// v7's cls_stats_kernel (grid B * cpb, CTA (b, j) chunk j of batch b; same sums, same L2 keep),
// with the group reduction reordered and the finalize folded in (the header, 1.).
template <typename T, bool TANH>
__global__ void __launch_bounds__(C8S_THREADS, 4)
    c8_stats_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int C, int S, int G,
                    int cpg, int passes, int cpb, int keep_from, int n_fin, double count, float eps) {
    constexpr int NT = C8S_THREADS, V = Vec<T>::N, L = 8;  // L: lanes a group in the reduction
    __shared__ float red_s[V][NT];
    __shared__ float red_q[V][NT];
    __shared__ double red_d[32];
    __shared__ unsigned int s_ticket;
    const int chunk = blockIdx.x;
    const int bt = chunk / cpb, j = chunk - bt * cpb;
    const int cvn = C / V, R = NT / cvn;  // host: cvn <= NT
    const int tid = threadIdx.x;
    const int cv = tid % cvn, r0 = tid / cvn;
    const bool active = r0 < R;
    const int s0 = j * R * passes + r0;
    const uint4* xt = reinterpret_cast<const uint4*>(x) + (static_cast<int64_t>(bt) * S + s0) * cvn + cv;
    const int64_t step = static_cast<int64_t>(R) * cvn;
    float sum[V], sq[V], sh[V];
    Vec<T> shv;
#pragma unroll
    for (int i = 0; i < V; ++i) {
        sum[i] = sq[i] = 0.0f;
        sh[i] = c8_shift(x, bt, C, S, (cv * V + i) / cpg, cpg);
        shv.set(i, sh[i]);  // exact: sh[i] is an element of x
    }
    if (active) {
        const bool full = passes % C8S_UNROLL == 0 && (j + 1) * R * passes <= S;
        if (chunk >= keep_from) {
            if (full)
                c8_accumulate<T, false, false>(xt, step, R, s0, passes, S, sh, shv.raw, sum, sq);
            else
                c8_accumulate<T, false, true>(xt, step, R, s0, passes, S, sh, shv.raw, sum, sq);
        } else {
            if (full)
                c8_accumulate<T, true, false>(xt, step, R, s0, passes, S, sh, shv.raw, sum, sq);
            else
                c8_accumulate<T, true, true>(xt, step, R, s0, passes, S, sh, shv.raw, sum, sq);
        }
    }
    // Thread tid = r0 * cvn + cv holds channel cv*V + i of rows r0 + k*R at [i][tid] (idle threads 0).
#pragma unroll
    for (int i = 0; i < V; ++i) {
        red_s[i][tid] = sum[i];
        red_q[i][tid] = sq[i];
    }
    __syncthreads();
    // Group g: L lanes, lane l the thread rows l, l + L, ... < R, each over the group's cpg
    // channels in order; then a butterfly over the L lanes.
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
            g_partial_sum[o] = s;
            g_partial_sq[o] = q;
        }
    }
    // Arrival (the partials above published first: barrier, then thread 0's fence, as
    // cooperative groups' grid sync).
    __syncthreads();
    if (tid == 0) {
        __threadfence();
        s_ticket = atomicAdd(&g8_arrive, 1u);
    }
    __syncthreads();
    const unsigned int n_chunks = gridDim.x;
    const unsigned int ticket = s_ticket;
    if (ticket + static_cast<unsigned int>(n_fin) < n_chunks) return;  // not one of the last n_fin
    if (tid == 0) {
        while (ld_acquire(&g8_arrive) < n_chunks) __nanosleep(64);
        __threadfence();
    }
    __syncthreads();
    const int f = static_cast<int>(ticket - (n_chunks - static_cast<unsigned int>(n_fin)));
    const int rows = static_cast<int>(n_chunks / static_cast<unsigned int>(cpb)) * G;  // B * G
    c8_finalize_rows<T, TANH>(x, w, b, C, S, G, cpg, cpb, rows, f, n_fin, count, eps, red_d);
    __syncthreads();
    if (tid == 0) {
        __threadfence();
        if (atomicAdd(&g8_fin, 1u) == static_cast<unsigned int>(n_fin) - 1u) {  // every finalizer is past its wait
            atomicExch(&g8_fin, 0u);
            atomicExch(&g8_arrive, 0u);
        }
    }
}

// Apply: x as [B][S][C], y as [B][C][S]. Thread (warp, lane): channel vector
// cv = (ct*WC + warp % WC)*4 + lane % 4, spatial rows sb .. sb + V - 1 with
// sb = ((st*WS + warp / WC)*8 + lane / 4)*V; V loads of 16 bytes, V stores of 16 bytes (the
// header, 3.). CTA k: channel tile k % n_ct, then spatial tile and batch counted down from the last.
template <typename T, bool TANH>
__global__ void __launch_bounds__(C8A_THREADS) c8_apply_kernel(const T* __restrict__ x, T* __restrict__ y, int C,
                                                               int S, int wc_log, int n_ct, int n_st, int B) {
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
    Vec<T> v[V];
#pragma unroll
    for (int r = 0; r < V; ++r) v[r].raw = ld16<true>(xp + static_cast<int64_t>(r) * cvn, ok);
    const int64_t ch0 = static_cast<int64_t>(bt) * C + static_cast<int64_t>(cv) * V;  // (b, first channel)
    T* yp = y + ch0 * S + sb;
    if constexpr (sizeof(T) == 4) {
        const float4* co = reinterpret_cast<const float4*>(g8_coef) + ch0;
#pragma unroll
        for (int i = 0; i < V; ++i) {
            const float4 p = ok ? co[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            Vec<T> o;
#pragma unroll
            for (int r = 0; r < V; ++r) o.set(r, norm_silu(v[r].get(i), p.x, p.y, p.z, p.w));
            st16_cs(yp + static_cast<int64_t>(i) * S, ok, o.raw);
        }
    } else {
        const float4* co = reinterpret_cast<const float4*>(g8_coef) + ch0 / 2;  // {a, c} of 2 channels
        float4 p[V / 2];
#pragma unroll
        for (int i = 0; i < V / 2; ++i) p[i] = ok ? co[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int i = 0; i < V; ++i) {
            const float a = (i & 1) ? p[i / 2].z : p[i / 2].x;
            const float c = (i & 1) ? p[i / 2].w : p[i / 2].y;
            uint32_t o[V / 2];
#pragma unroll
            for (int r = 0; r < V; r += 2)
                o[r / 2] = pack2(c8_silu<TANH>(v[r].get(i), a, c), c8_silu<TANH>(v[r + 1].get(i), a, c), T());
            st16_cs(yp + static_cast<int64_t>(i) * S, ok, make_uint4(o[0], o[1], o[2], o[3]));
        }
    }
}

// SMs, L2 size and resident stats CTAs of the current device, cached per device as v5's cards.
struct C8Card {
    int sms;    // 0: the path is off
    int slots;  // c8_stats_kernel<T> CTAs resident at once
    int64_t l2_bytes;
};
template <typename T>
const C8Card& c8_card() {
    static C8Card cards[kMaxDevices + 1] = {};
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return cards[kMaxDevices];
    }
    C8Card& card = cards[cur];
    if (!filled[cur]) {
        filled[cur] = true;
        int sms = 0, l2 = 0, per_sm = 0;
        const bool ok =
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
            cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, cur) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, c8_stats_kernel<T, GNS_V8_TANH != 0>, C8S_THREADS,
                                                          0) == cudaSuccess;
        cudaGetLastError();
        card.sms = ok ? sms : 0;
        card.slots = ok ? sms * per_sm : 0;
        card.l2_bytes = ok ? l2 : 0;
    }
    return card;
}

// The fused channels-last path (conditions in the header). Launches and returns true; false:
// nothing launched, v5 runs the call.
template <typename T>
bool try_cl8(kp_call* call, cudaStream_t s, int32_t* rc) {
    constexpr bool TANH = GNS_V8_TANH != 0;
    const kp_tensor& xt = call->tensors[0];
    if (is_contiguous(xt) || !is_channels_last(xt)) return false;
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
    const int64_t x_bytes = B * C * S * static_cast<int64_t>(sizeof(T));
    if (gs < kLargeGroup && x_bytes < (int64_t(1) << 20)) return false;  // v7b's domain
    if (C % V != 0 || S % V != 0 || C / V > C8S_THREADS) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    if (B * G > C8_MAX_ROWS) return false;  // at most 4 rows a finalizer
    if (B * C * (sizeof(T) == 4 ? 4 : 2) > kC8CoefFloats) return false;
    const C8Card& card = c8_card<T>();
    if (card.sms <= 0) return false;
    // Stats chunks as v7: R positions a pass; up to 16 passes, halved while fewer than 4 chunks a SM.
    const int64_t cvn = C / V, R = C8S_THREADS / cvn;
    int passes = C8S_MAX_PASSES;
    while (passes > 1 && B * ((S + R * passes - 1) / (R * passes)) < 4 * static_cast<int64_t>(card.sms)) passes /= 2;
    const int64_t cpb = (S + R * passes - 1) / (R * passes), n_chunks = B * cpb;
    if (B * G * cpb > kWsFloats) return false;  // the partial buffers
    int64_t n_fin = B * G < C8_MAX_FIN ? B * G : C8_MAX_FIN;
    if (n_chunks < n_fin) n_fin = n_chunks;
    if (2 * n_fin > card.slots) return false;  // the finalizers' wait needs the rest resident
    const int64_t chunk_bytes = R * passes * C * static_cast<int64_t>(sizeof(T));
    const int64_t keep = (card.l2_bytes * C8_KEEP_PCT / 100 + chunk_bytes - 1) / chunk_bytes;
    const int64_t keep_from = n_chunks > keep ? n_chunks - keep : 0;
    // Apply tiles: WC = 2^wc_log warps across channel vectors (4 each), the CTA's other warps
    // along spatial (8V rows each).
    int wc_log = 0;
    while (wc_log < C8A_WLOG && (int64_t(4) << wc_log) < cvn) ++wc_log;
    const int64_t n_ct = (cvn + (int64_t(4) << wc_log) - 1) / (int64_t(4) << wc_log);
    const int64_t st_rows = int64_t(8) * V * ((C8A_THREADS / 32) >> wc_log);
    const int64_t n_st = (S + st_rows - 1) / st_rows;
    if (n_ct * n_st * B >= (int64_t(1) << 31)) return false;
    c8_stats_kernel<T, TANH><<<static_cast<unsigned int>(n_chunks), C8S_THREADS, 0, s>>>(
        x, w, b, static_cast<int>(C), static_cast<int>(S), G, static_cast<int>(cpg), passes, static_cast<int>(cpb),
        static_cast<int>(keep_from), static_cast<int>(n_fin), static_cast<double>(gs), eps);
    c8_apply_kernel<T, TANH><<<static_cast<unsigned int>(n_ct * n_st * B), C8A_THREADS, 0, s>>>(
        x, y, static_cast<int>(C), static_cast<int>(S), wc_log, static_cast<int>(n_ct), static_cast<int>(n_st),
        static_cast<int>(B));
    snprintf(call->path, KP_PATH_LEN, "cl8_stats_p%d_keep%d_fin%d+cl8_apply_%s_wc%d", passes,
             static_cast<int>(n_chunks - keep_from), static_cast<int>(n_fin),
             sizeof(T) == 4 ? "exact" : (TANH ? "tanh" : "fma_exact"), 1 << wc_log);
    *rc = launched(call);
    return true;
}

}  // namespace

// This file's entry, exported as kp_group_norm_silu (in this file the C++ name kp_group_norm_silu
// is v5's entry, see the header).
extern "C" int32_t v8_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v8_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call)) {  // every check of the baseline's entry
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const bool ran = dt == KP_F16    ? try_cl8<__half>(call, s, &rc)
                         : dt == KP_BF16 ? try_cl8<__nv_bfloat16>(call, s, &rc)
                                         : try_cl8<float>(call, s, &rc);
        if (ran) return rc;
    }
    return kp_group_norm_silu(call, stream_ptr);  // v5
}
