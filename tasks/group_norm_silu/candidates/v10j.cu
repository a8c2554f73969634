// kpilot-parent: v10i sha256 926b0ced44acea98593495ccc87ee2a937ab4dce256a0e444b4192956663c47f
// Candidate v10j for tasks/group_norm_silu: v10i with the fused channels-last path's statistics
// made exact on constant groups without giving back v10i's outlier fix. Every other path is
// v10i's (v10i.cu, and through it v10h, v9c, v9, v8, v5 and the baseline, #included whole).
//
// Why (NVIDIA H200; NOTES.md, "Review of v10i"):
//   - v8-v10h summed d = x - K in fp32 with K = the group's first element: an outlier there
//     cancels (fp32 channels-last outlier row: v10h 174,372-201,711 outputs out, runs
//     20261202T053554Z-2a01a0bc and 20261202T055049Z-0c645a86).
//   - v10i sums x unshifted in fp32 (a thread's 4-16 elements, then the CTA's fp32 lane sums and
//     butterfly): a constant group's mean comes out an ulp off, and with rstd = 1000 the output is
//     out of the fp32 tolerance. Scratch-root probes of constant 0.3 fp32 channels-last
//     [1,32,4,256,256] and [1,64,8,128,128]: v10i 5,505,024 of 8,388,608 compared outputs out on
//     each (run 20261202T063050Z-484cc976), v10h and the baseline correct (20261202T063053Z-32ebeed4).
//
// The change, on exactly the calls v10i sends to v8's c8_stats_kernel + c8_apply_kernel:
//   1. Each thread shifts by ITS OWN first element of each lane (the vector of its first pass, a
//      register it loads anyway: no extra load or round trip), so a constant group gives d = 0
//      everywhere, and an outlier reaches one thread's fp32 chain of at most 16 elements.
//   2. At the end of its chain the thread turns its shifted fp32 sums into raw sums in fp64:
//      sum x = sum d + n K, sum x^2 = sum d^2 + 2 K sum d + n K^2 (exact for a constant group:
//      n <= 16, K an element of x). From there on everything is fp64: the CTA's lane sums and
//      butterfly, the CTA partials (own fp64 buffers), the finalizers' sums; mean = E[x],
//      var = max(E[x^2] - mean^2, 0), rstd = 1/sqrt(var + eps), as v8's finalizer.
//   3. The apply is v8's c8_apply_kernel, unchanged, reading the same coefficients (g8_coef).
// The grid, chunks, passes, L2 keep, finalizer count and the ticket protocol are v8's (copied:
// v8.cu cannot be edited, its hash is pinned by earlier runs); the stats kernel's shared
// reduction arrays are fp64 (32 KB: still 4 CTAs an SM at 64 registers).
//
// Dispatch: v10j's entry takes a call first when v9_run would send it to try_cl8 (the baseline's
// checks, channels-last x, v9c's group-size test) and this file's own copy of try_cl8's conditions
// hold (plus B*G*chunks within its fp64 partial buffers); anything else goes to v10i's entry.
// Path: `cl8j_stats_p<passes>_keep<k>_fin<n>+cl8_apply_<form>_wc<w>`.
//
// PREDICTION (H200, not measured): the 15 channels-last production rows within +-3% of v10i's
// times (run 20261202T054735Z-eb55156b): the fp64 conversion is once a thread, the fp64 CTA
// reduction once a CTA, and the first pass's vector is no longer a separate load only when the
// compiler keeps it in registers; every other row v10i's; the constant and outlier probes correct.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kpilot_abi.h"

// v10i, whole, its entry under another symbol (as v10i does with v10h).
extern "C" int32_t v10i_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v10i_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v10i.cu"
#pragma nv_diag_default 1306

namespace {

constexpr int64_t kJParts = int64_t(1) << 20;  // fp64 partials a buffer (B * G * chunks)
__device__ double gj_psum[kJParts];
__device__ double gj_psq[kJParts];
__device__ unsigned int gj_arrive;  // stats CTAs arrived (reset by the last finalizer)
__device__ unsigned int gj_fin;     // finalizers done (reset by the last one)

// v8's c8_finalize_rows with fp64 partials of raw sums (no shift).
template <typename T, bool TANH>
__device__ __noinline__ void cj_finalize_rows(const T* __restrict__ w, const T* __restrict__ b, int C, int G, int cpg,
                                              int cpb, int rows, int f, int n_fin, double count, float eps,
                                              double* red) {
    constexpr int NT = C8S_THREADS;
    for (int row = f; row < rows; row += n_fin) {
        const double* ps = gj_psum + static_cast<int64_t>(row) * cpb;
        const double* pq = gj_psq + static_cast<int64_t>(row) * cpb;
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
            } else {
                const double a = rstd * static_cast<double>(to_f(w[c]));
                const double cc = static_cast<double>(to_f(b[c])) - mean * a;
                const double hf = TANH ? 0.5 : 1.0;
                reinterpret_cast<float2*>(g8_coef)[o] = make_float2(static_cast<float>(hf * a), static_cast<float>(hf * cc));
            }
        }
    }
}

// v8's c8_stats_kernel (same grid, chunks, passes, L2 keep, arrival and finalizers) with the
// statistics of the header: a per-thread shift, fp64 from the end of the thread's chain.
template <typename T, bool TANH>
__global__ void __launch_bounds__(C8S_THREADS, 4)
    cj_stats_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int C, int S, int G,
                    int cpg, int passes, int cpb, int keep_from, int n_fin, double count, float eps) {
    constexpr int NT = C8S_THREADS, V = Vec<T>::N, L = 8;  // L: lanes a group in the reduction
    __shared__ double red_s[V][NT];
    __shared__ double red_q[V][NT];
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
    Vec<T> shv;
    shv.raw = make_uint4(0u, 0u, 0u, 0u);
    int n = 0;  // elements of this thread (a lane each)
    if (active) {
        // K: the thread's own first vector (pass 0, in range since s0 < S); its d is 0, so the
        // chain starts at pass 1.
        const bool cs = chunk < keep_from;
        shv.raw = cs ? __ldcs(xt) : __ldg(xt);
        const int left = (S - s0 + R - 1) / R;  // passes of this thread in range
        n = left < passes ? left : passes;
#pragma unroll
        for (int i = 0; i < V; ++i) {
            sum[i] = sq[i] = 0.0f;
            sh[i] = shv.get(i);
        }
        if (passes > 1) {
            if (cs)
                c8_accumulate<T, true, true>(xt + step, step, R, s0 + R, passes - 1, S, sh, shv.raw, sum, sq);
            else
                c8_accumulate<T, false, true>(xt + step, step, R, s0 + R, passes - 1, S, sh, shv.raw, sum, sq);
        }
    } else {
#pragma unroll
        for (int i = 0; i < V; ++i) sum[i] = sq[i] = sh[i] = 0.0f;
    }
    // Raw sums in fp64 (idle threads 0): thread tid = r0 * cvn + cv holds channel cv*V + i.
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const double k = static_cast<double>(sh[i]), sd = static_cast<double>(sum[i]);
        const double nk = static_cast<double>(n) * k;
        red_s[i][tid] = sd + nk;
        red_q[i][tid] = static_cast<double>(sq[i]) + 2.0 * k * sd + nk * k;
    }
    __syncthreads();
    for (int g0 = 0; g0 < G; g0 += NT / L) {
        const int g = g0 + tid / L, l = tid % L;
        double s = 0.0, q = 0.0;
        if (g < G)
            for (int r = l; r < R; r += L)
                for (int c = g * cpg; c < (g + 1) * cpg; ++c) {
                    const int t = r * cvn + c / V, i = c % V;
                    s += red_s[i][t];
                    q += red_q[i][t];
                }
#pragma unroll
        for (int o = L / 2; o > 0; o >>= 1) {
            s += __shfl_xor_sync(0xffffffffu, s, o);
            q += __shfl_xor_sync(0xffffffffu, q, o);
        }
        if (l == 0 && g < G) {
            const int64_t o = (static_cast<int64_t>(bt) * G + g) * cpb + j;
            gj_psum[o] = s;
            gj_psq[o] = q;
        }
    }
    // Arrival and the last n_fin CTAs' finalize: v8's protocol on this file's counters.
    __syncthreads();
    if (tid == 0) {
        __threadfence();
        s_ticket = atomicAdd(&gj_arrive, 1u);
    }
    __syncthreads();
    const unsigned int n_chunks = gridDim.x;
    const unsigned int ticket = s_ticket;
    if (ticket + static_cast<unsigned int>(n_fin) < n_chunks) return;  // not one of the last n_fin
    if (tid == 0) {
        while (ld_acquire(&gj_arrive) < n_chunks) __nanosleep(64);
        __threadfence();
    }
    __syncthreads();
    const int f = static_cast<int>(ticket - (n_chunks - static_cast<unsigned int>(n_fin)));
    const int rows = static_cast<int>(n_chunks / static_cast<unsigned int>(cpb)) * G;  // B * G
    cj_finalize_rows<T, TANH>(w, b, C, G, cpg, cpb, rows, f, n_fin, count, eps, red_d);
    __syncthreads();
    if (tid == 0) {
        __threadfence();
        if (atomicAdd(&gj_fin, 1u) == static_cast<unsigned int>(n_fin) - 1u) {  // every finalizer is past its wait
            atomicExch(&gj_fin, 0u);
            atomicExch(&gj_arrive, 0u);
        }
    }
}

// Resident cj_stats_kernel CTAs of the current device (the finalizers' wait needs them), cached
// per device as v8's c8_card.
template <typename T>
int cj_slots() {
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
        const bool ok = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
                        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, cj_stats_kernel<T, GNS_V8_TANH != 0>,
                                                                      C8S_THREADS, 0) == cudaSuccess;
        cudaGetLastError();
        slots[cur] = ok ? sms * per_sm : 0;
    }
    return slots[cur];
}

// v8's try_cl8, its conditions and launch shapes line for line, with cj_stats_kernel for
// c8_stats_kernel (and its own partial-buffer and residency tests).
template <typename T>
bool try_clj(kp_call* call, cudaStream_t s, int32_t* rc) {
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
    // v9_run's test before try_cl8 (v9c's GNS_V9_MIN_GROUP).
    if (gs < (v9c_fused_passes_at_least_4<T>(B, C, S) ? int64_t(0) : (int64_t(1) << 18))) return false;
    const int64_t x_bytes = B * C * S * static_cast<int64_t>(sizeof(T));
    if (gs < kLargeGroup && x_bytes < (int64_t(1) << 20)) return false;  // v7b's domain
    if (C % V != 0 || S % V != 0 || C / V > C8S_THREADS) return false;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return false;
    if (B * G > C8_MAX_ROWS) return false;  // at most 4 rows a finalizer
    if (B * C * (sizeof(T) == 4 ? 4 : 2) > kC8CoefFloats) return false;
    const C8Card& card = c8_card<T>();
    if (card.sms <= 0) return false;
    const int64_t cvn = C / V, R = C8S_THREADS / cvn;
    int passes = C8S_MAX_PASSES;
    while (passes > 1 && B * ((S + R * passes - 1) / (R * passes)) < 4 * static_cast<int64_t>(card.sms)) passes /= 2;
    const int64_t cpb = (S + R * passes - 1) / (R * passes), n_chunks = B * cpb;
    if (B * G * cpb > kJParts) return false;  // this file's fp64 partial buffers
    int64_t n_fin = B * G < C8_MAX_FIN ? B * G : C8_MAX_FIN;
    if (n_chunks < n_fin) n_fin = n_chunks;
    if (2 * n_fin > cj_slots<T>()) return false;  // the finalizers' wait needs the rest resident
    const int64_t chunk_bytes = R * passes * C * static_cast<int64_t>(sizeof(T));
    const int64_t keep = (card.l2_bytes * C8_KEEP_PCT / 100 + chunk_bytes - 1) / chunk_bytes;
    const int64_t keep_from = n_chunks > keep ? n_chunks - keep : 0;
    int wc_log = 0;
    while (wc_log < C8A_WLOG && (int64_t(4) << wc_log) < cvn) ++wc_log;
    const int64_t n_ct = (cvn + (int64_t(4) << wc_log) - 1) / (int64_t(4) << wc_log);
    const int64_t st_rows = int64_t(8) * V * ((C8A_THREADS / 32) >> wc_log);
    const int64_t n_st = (S + st_rows - 1) / st_rows;
    if (n_ct * n_st * B >= (int64_t(1) << 31)) return false;
    cj_stats_kernel<T, TANH><<<static_cast<unsigned int>(n_chunks), C8S_THREADS, 0, s>>>(
        x, w, b, static_cast<int>(C), static_cast<int>(S), G, static_cast<int>(cpg), passes, static_cast<int>(cpb),
        static_cast<int>(keep_from), static_cast<int>(n_fin), static_cast<double>(gs), eps);
    c8_apply_kernel<T, TANH><<<static_cast<unsigned int>(n_ct * n_st * B), C8A_THREADS, 0, s>>>(
        x, y, static_cast<int>(C), static_cast<int>(S), wc_log, static_cast<int>(n_ct), static_cast<int>(n_st),
        static_cast<int>(B));
    snprintf(call->path, KP_PATH_LEN, "cl8j_stats_p%d_keep%d_fin%d+cl8_apply_%s_wc%d", passes,
             static_cast<int>(n_chunks - keep_from), static_cast<int>(n_fin),
             sizeof(T) == 4 ? "exact" : (TANH ? "tanh" : "fma_exact"), 1 << wc_log);
    *rc = launched(call);
    return true;
}

}  // namespace

extern "C" int32_t v10j_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v10j_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call)) {  // every check of the baseline's entry, as v9/v10 begin
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const bool ran = dt == KP_F16    ? try_clj<__half>(call, s, &rc)
                         : dt == KP_BF16 ? try_clj<__nv_bfloat16>(call, s, &rc)
                                         : try_clj<float>(call, s, &rc);
        if (ran) return rc;
    }
    return v10i_group_norm_silu(call, stream_ptr);
}
