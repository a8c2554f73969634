// kpilot-parent: v10j sha256 af5c047c68c8699d4093f5dc2760d1b710a07d9aae1cfaa3e803393bd23a76ca
// Candidate v10k for tasks/group_norm_silu: v10j with the fused channels-last path's load order
// fixed and its fp16/bf16 apply unfolded. Every other path is v10j's (v10j.cu, and through it
// v10i, v10h, v9c, v9, v8, v5 and the baseline, #included whole).
//
// Why (NVIDIA H200; NOTES.md, "Scratch-root probes, v10j" and "Review of v10j"):
//   1. v10j is correct on every row and probe but its channels-last rows took 1.08-1.53x v10i's
//      time (run 20261202T064303Z-959dafbe against 20261202T054735Z-eb55156b). Its chain starts at
//      pass 1, so every chunk takes v8's masked accumulate, whose filler for an out-of-range load
//      is the thread's first vector K: in the PTX every later load first copies K into its
//      destination register, so no load is issued before K's data is back (two memory round
//      trips a thread).
//   2. For fp16/bf16 output v8's apply folds the normalization into h = fma(x, a, c) with
//      a = rstd w and c = b - mean a, each rounded to fp32: for x = mean the exact h is b, but the
//      roundings leave about |mean| rstd w 2^-24. A constant fp16 channels-last group of 200
//      (rstd = 1000 from eps) is out of the fp16 tolerance on 1,441,792 of 8,388,608 outputs in a
//      CPU emulation, where upstream passes: its mean is exactly 200 and x - mean = 0.
//
// The change, on exactly the calls v10j sends to its cj_stats_kernel (try_clj's conditions, line
// for line, with one that no call reaches: see try_clk):
//   1. ck_accumulate (v8's c8_accumulate with two changes) runs from pass 0. Its first group of
//      U = 8 loads is issued before anything uses them; K (the thread's shift, a lane each) is
//      then set from pass 0's vector, whose d is 0. Its masked variant fills an out-of-range load
//      with zeros (a constant: no load waits on another) and zeroes that load's d instead. The
//      unmasked variant runs wherever v8 ran it (passes a multiple of 8 and the chunk in range).
//      The statistics are v10j's otherwise: the thread's fp32 chain of d = x - K (at most 16
//      elements), raw sums rebuilt in fp64 at its end, fp64 from there on (same buffers).
//   2. The finalizer stores per channel {mean, a, b} (fp32; halved a and b for the tanh form)
//      for fp16/bf16 too, and ck_apply_kernel computes h = fma(x - mean, a, b): one more
//      subtraction an element; x - mean is exact for a constant group whose mean fp32 holds, as
//      upstream's (x - mean) * rstd. fp32 output keeps v8's c8_apply_kernel (v7's exact
//      norm_silu on {mean, rstd, w, b}), unchanged.
// Shared with v10j (same file after the #include; the calls never overlap on one stream, as v8's
// own counters are shared by its fp16 and fp32 kernels): gj_psum/gj_psq, gj_arrive/gj_fin, and
// v8's g8_coef.
//
// Path: `cl8k_stats_p<passes>_keep<k>_fin<n>+<apply>_wc<w>`, apply `cl8_apply_exact` (fp32, v8's)
// or `cl8k_apply_tanh` (fp16/bf16).
//
// PREDICTION (H200, not measured): the 15 channels-last production rows within +-3% of v10i's
// times (run eb55156b; 0.85-0.95 of v10j's), every other row v10j's; the constant fp32 (0.3) and
// fp16 (200) channels-last stress rows correct, v10j failing the fp16 one.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kpilot_abi.h"

// v10j, whole, its entry under another symbol (as v10j does with v10i).
extern "C" int32_t v10j_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v10j_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v10j.cu"
#pragma nv_diag_default 1306

namespace {

// v8's c8_accumulate from pass 0 with the shift taken from pass 0's vector (the header, 1.).
// The caller guarantees pass 0 is in range.
template <typename T, bool CS, bool MASK>
__device__ __forceinline__ void ck_accumulate(const uint4* xt, int64_t step, int R, int s0, int passes, int S,
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
        if (p0 == 0) {
#pragma unroll
            for (int i = 0; i < V; ++i) sh[i] = v[0].get(i);
        }
#pragma unroll
        for (int u = 0; u < U; ++u)
#pragma unroll
            for (int i = 0; i < V; ++i) {
                float xv = __fsub_rn(v[u].get(i), sh[i]);
                if (MASK && !in[u]) xv = 0.0f;
                sum[i] = __fadd_rn(sum[i], xv);
                sq[i] = __fmaf_rn(xv, xv, sq[i]);
            }
    }
}

// v10j's cj_finalize_rows with {mean, a, b} stored for fp16/bf16 (the header, 2.).
template <typename T, bool TANH>
__device__ __noinline__ void ck_finalize_rows(const T* __restrict__ w, const T* __restrict__ b, int C, int G, int cpg,
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
                const double hf = TANH ? 0.5 : 1.0;
                const double a = rstd * static_cast<double>(to_f(w[c]));
                reinterpret_cast<float4*>(g8_coef)[o] =
                    make_float4(static_cast<float>(mean), static_cast<float>(hf * a),
                                static_cast<float>(hf * static_cast<double>(to_f(b[c]))), 0.0f);
            }
        }
    }
}

// v10j's cj_stats_kernel with ck_accumulate from pass 0 and ck_finalize_rows.
template <typename T, bool TANH>
__global__ void __launch_bounds__(C8S_THREADS, 4)
    ck_stats_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int C, int S, int G,
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
#pragma unroll
    for (int i = 0; i < V; ++i) sum[i] = sq[i] = sh[i] = 0.0f;
    int n = 0;  // passes of this thread in range (elements a lane)
    if (active) {
        const int left = (S - s0 + R - 1) / R;
        n = left < passes ? left : passes;
        const bool full = passes % C8S_UNROLL == 0 && (j + 1) * R * passes <= S;  // v8's test
        if (chunk >= keep_from) {
            if (full)
                ck_accumulate<T, false, false>(xt, step, R, s0, passes, S, sh, sum, sq);
            else
                ck_accumulate<T, false, true>(xt, step, R, s0, passes, S, sh, sum, sq);
        } else {
            if (full)
                ck_accumulate<T, true, false>(xt, step, R, s0, passes, S, sh, sum, sq);
            else
                ck_accumulate<T, true, true>(xt, step, R, s0, passes, S, sh, sum, sq);
        }
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
    // Arrival and the last n_fin CTAs' finalize: v8's protocol on v10j's counters.
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
    ck_finalize_rows<T, TANH>(w, b, C, G, cpg, cpb, rows, f, n_fin, count, eps, red_d);
    __syncthreads();
    if (tid == 0) {
        __threadfence();
        if (atomicAdd(&gj_fin, 1u) == static_cast<unsigned int>(n_fin) - 1u) {  // every finalizer is past its wait
            atomicExch(&gj_fin, 0u);
            atomicExch(&gj_arrive, 0u);
        }
    }
}

// silu of y = (x - m) * a + c for fp16/bf16 output; TANH: a and c halved, h = y/2 (v8's c8_silu
// with the subtraction).
template <bool TANH>
__device__ __forceinline__ float ck_silu(float x, float m, float a, float c) {
    return c8_silu<TANH>(__fsub_rn(x, m), a, c);
}

// v8's c8_apply_kernel, its fp16/bf16 branch on {mean, a, b} per channel (the header, 2.).
template <typename T, bool TANH>
__global__ void __launch_bounds__(C8A_THREADS) ck_apply_kernel(const T* __restrict__ x, T* __restrict__ y, int C,
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
    Vec<T> v[V];
#pragma unroll
    for (int r = 0; r < V; ++r) v[r].raw = ld16<true>(xp + static_cast<int64_t>(r) * cvn, ok);
    const int64_t ch0 = static_cast<int64_t>(bt) * C + static_cast<int64_t>(cv) * V;  // (b, first channel)
    T* yp = y + ch0 * S + sb;
    const float4* co = reinterpret_cast<const float4*>(g8_coef) + ch0;  // {mean, a, b, 0} a channel
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const float4 p = ok ? co[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        uint32_t o[V / 2];
#pragma unroll
        for (int r = 0; r < V; r += 2)
            o[r / 2] = pack2(ck_silu<TANH>(v[r].get(i), p.x, p.y, p.z), ck_silu<TANH>(v[r + 1].get(i), p.x, p.y, p.z),
                             T());
        st16_cs(yp + static_cast<int64_t>(i) * S, ok, make_uint4(o[0], o[1], o[2], o[3]));
    }
}

// Resident ck_stats_kernel CTAs of the current device (the finalizers' wait needs them), cached
// per device as v10j's cj_slots.
template <typename T>
int ck_slots() {
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
                        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, ck_stats_kernel<T, GNS_V8_TANH != 0>,
                                                                      C8S_THREADS, 0) == cudaSuccess;
        cudaGetLastError();
        slots[cur] = ok ? sms * per_sm : 0;
    }
    return slots[cur];
}

// v10j's try_clj (v8's try_cl8, line for line) with ck_stats_kernel and, for fp16/bf16,
// ck_apply_kernel. One condition differs: the coefficients are 4 floats a channel for every
// type (try_clj: 2 for fp16/bf16), so fp16/bf16 calls with 2^19 < B*C <= 2^20 would go to
// v10j. None exists: B*G <= 128 and C/V <= 256 give B*C <= 128 * 2048 = 2^18.
template <typename T>
bool try_clk(kp_call* call, cudaStream_t s, int32_t* rc) {
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
    if (B * C * 4 > kC8CoefFloats) return false;
    const C8Card& card = c8_card<T>();
    if (card.sms <= 0) return false;
    const int64_t cvn = C / V, R = C8S_THREADS / cvn;
    int passes = C8S_MAX_PASSES;
    while (passes > 1 && B * ((S + R * passes - 1) / (R * passes)) < 4 * static_cast<int64_t>(card.sms)) passes /= 2;
    const int64_t cpb = (S + R * passes - 1) / (R * passes), n_chunks = B * cpb;
    if (B * G * cpb > kJParts) return false;  // v10j's fp64 partial buffers
    int64_t n_fin = B * G < C8_MAX_FIN ? B * G : C8_MAX_FIN;
    if (n_chunks < n_fin) n_fin = n_chunks;
    if (2 * n_fin > ck_slots<T>()) return false;  // the finalizers' wait needs the rest resident
    const int64_t chunk_bytes = R * passes * C * static_cast<int64_t>(sizeof(T));
    const int64_t keep = (card.l2_bytes * C8_KEEP_PCT / 100 + chunk_bytes - 1) / chunk_bytes;
    const int64_t keep_from = n_chunks > keep ? n_chunks - keep : 0;
    int wc_log = 0;
    while (wc_log < C8A_WLOG && (int64_t(4) << wc_log) < cvn) ++wc_log;
    const int64_t n_ct = (cvn + (int64_t(4) << wc_log) - 1) / (int64_t(4) << wc_log);
    const int64_t st_rows = int64_t(8) * V * ((C8A_THREADS / 32) >> wc_log);
    const int64_t n_st = (S + st_rows - 1) / st_rows;
    if (n_ct * n_st * B >= (int64_t(1) << 31)) return false;
    ck_stats_kernel<T, TANH><<<static_cast<unsigned int>(n_chunks), C8S_THREADS, 0, s>>>(
        x, w, b, static_cast<int>(C), static_cast<int>(S), G, static_cast<int>(cpg), passes, static_cast<int>(cpb),
        static_cast<int>(keep_from), static_cast<int>(n_fin), static_cast<double>(gs), eps);
    const unsigned int n_apply = static_cast<unsigned int>(n_ct * n_st * B);
    if constexpr (sizeof(T) == 4)
        c8_apply_kernel<T, TANH><<<n_apply, C8A_THREADS, 0, s>>>(x, y, static_cast<int>(C), static_cast<int>(S), wc_log,
                                                                 static_cast<int>(n_ct), static_cast<int>(n_st),
                                                                 static_cast<int>(B));
    else
        ck_apply_kernel<T, TANH><<<n_apply, C8A_THREADS, 0, s>>>(x, y, static_cast<int>(C), static_cast<int>(S), wc_log,
                                                                 static_cast<int>(n_ct), static_cast<int>(n_st),
                                                                 static_cast<int>(B));
    snprintf(call->path, KP_PATH_LEN, "cl8k_stats_p%d_keep%d_fin%d+%s_wc%d", passes,
             static_cast<int>(n_chunks - keep_from), static_cast<int>(n_fin),
             sizeof(T) == 4 ? "cl8_apply_exact" : (TANH ? "cl8k_apply_tanh" : "cl8k_apply_fma_exact"), 1 << wc_log);
    *rc = launched(call);
    return true;
}

}  // namespace

extern "C" int32_t v10k_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v10k_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call)) {  // every check of the baseline's entry, as v9/v10 begin
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const bool ran = dt == KP_F16    ? try_clk<__half>(call, s, &rc)
                         : dt == KP_BF16 ? try_clk<__nv_bfloat16>(call, s, &rc)
                                         : try_clk<float>(call, s, &rc);
        if (ran) return rc;
    }
    return v10j_group_norm_silu(call, stream_ptr);
}
