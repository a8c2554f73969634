// kpilot-parent: v12 sha256 d47f722eaae04cbc7065553e648d136692fa110b950a3b962b12de8a5927e2f4
// Candidate v19 for tasks/group_norm_silu: v12 (#included whole, its entry under another symbol)
// with ONE change on the fused channels-last path: the statistics kernel's occupancy. v10p's
// cp_stats_kernel runs at most 4 CTAs of 256 threads an SM (`__launch_bounds__(256, 4)`: 64
// registers, 8 16-byte loads in flight a thread); here the same kernel, line for line, at up to
// GNS_V19_MINB CTAs an SM with GNS_V19_UNROLL loads in flight a thread (defaults 8 and 2).
//
// Why (measured). ncu of the 570 MB channels-last row (run 20261203T083138Z-480ed12f, NVIDIA H200,
// NOTES "ncu of the 570 MB channels-last row"): v10p's stats kernel (v12 runs the same one there)
// took 84.3-85.1 us at 70.5-71.2% of DRAM peak with 47.6% of warps active, where the baseline's own
// stats kernel read the same 285 MB in 68.4-68.9 us at 86.8-87.5% with 94.3% active (32 registers,
// 8 CTAs an SM). Its apply is the larger part of the row but is held to 7 CTAs by its coefficient
// loads (v10p's header); the stats kernel is not, so it is the one knob here.
//
// The arithmetic, partials, finalize and apply are v12's: the kernel body is v10p's cp_stats_kernel
// (and its cp_accumulate) copied unchanged but for the launch bound and the unroll, so the fp32/fp64
// sums are formed in the same order per thread (a pass's rows in pass order; only how many loads are
// issued before they are added changes, not the order of the additions) and the outputs are
// bit-identical to v12's. The grid, passes rule (v12's clq_passes, now with this kernel's slots),
// keep, finalizer count and residency check are v12's try_clq, with this kernel's slots.
//
// PREDICTION (H200, against v12 in the same lease): every row correct and bit-identical to v12; on
// the channels-last rows of the fused path the stats kernel 10-20% faster, so the 64 MB-570 MB
// channels-last rows 3-7% faster (the stats kernel is about a third of their time), the small
// channels-last rows within 3%; every contiguous row v12's code. If the extra CTAs only add
// partials and tails (one-wave rows now take fewer passes), the mid-size channels-last rows slower.
// ptxas (sm_90a, nvcc 13.0), the fp16 kernel with fp32 CTA sums (the production rows'
// instantiation): 32 registers, 32 bytes of spill stores and 104 of spill loads (v12's: 64, none).
// Path: `cl19p_stats_p<passes>_...` / `cl19q_...` on the rows this path takes, v12's names elsewhere.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t v12_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v12_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v12.cu"
#pragma nv_diag_default 1306

#ifndef GNS_V19_MINB
#define GNS_V19_MINB 8
#endif
#ifndef GNS_V19_UNROLL
#define GNS_V19_UNROLL 2
#endif

namespace {

constexpr int kV19Unroll = GNS_V19_UNROLL;
static_assert(C8S_MAX_PASSES % kV19Unroll == 0, "full chunks take the unmasked loop");


// v8's c8_accumulate from pass 0 (v10m's cm_accumulate): SHIFT subtracts the thread's first
// vector (set from pass 0, which the caller guarantees is in range); a masked load reads zeros
// (a constant: no load waits on another) and adds 0.
template <typename T, bool CS, bool MASK, bool SHIFT>
__device__ __forceinline__ void cp19_accumulate(const uint4* xt, int64_t step, int R, int s0, int passes, int S,
                                              float (&sh)[Vec<T>::N], float (&sum)[Vec<T>::N],
                                              float (&sq)[Vec<T>::N]) {
    constexpr int V = Vec<T>::N, U = kV19Unroll;
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

// v8's stats kernel (grid B * cpb, CTA (b, j) chunk j of batch b) with the statistics of the
// header. ACC float: v8's fp32 CTA reduction (two arrays, one phase); ACC double: fp64 raw sums
// rebuilt from the thread's shift, one array, two phases (v10l/v10m). Both end in fp64 partials.
template <typename T, bool TANH, bool SHIFT, typename ACC>
__global__ void __launch_bounds__(C8S_THREADS, GNS_V19_MINB)
    cp19_stats_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int C, int S, int G,
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
        const bool full = passes % kV19Unroll == 0 && (j + 1) * R * passes <= S;  // v8's test
        if (chunk >= keep_from) {
            if (full)
                cp19_accumulate<T, false, false, SHIFT>(xt, step, R, s0, passes, S, sh, sum, sq);
            else
                cp19_accumulate<T, false, true, SHIFT>(xt, step, R, s0, passes, S, sh, sum, sq);
        } else {
            if (full)
                cp19_accumulate<T, true, false, SHIFT>(xt, step, R, s0, passes, S, sh, sum, sq);
            else
                cp19_accumulate<T, true, true, SHIFT>(xt, step, R, s0, passes, S, sh, sum, sq);
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

// v10p's cp_slots for this file's kernel, with the largest shared-memory carveout asked for first
// (8 CTAs of 16.6 KB of static shared memory an SM need more than the default carveout may give).
template <typename T, bool SHIFT, typename ACC>
int cp19_slots() {
    static int slots[kMaxDevices + 1] = {};
    static bool filled[kMaxDevices + 1] = {};
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess || cur < 0 || cur >= kMaxDevices) {
        cudaGetLastError();
        return 0;
    }
    if (!filled[cur]) {
        filled[cur] = true;
        constexpr auto kKernel = cp19_stats_kernel<T, GNS_V8_TANH != 0, SHIFT, ACC>;
        if (cudaFuncSetAttribute(kKernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 static_cast<int>(cudaSharedmemCarveoutMaxShared)) != cudaSuccess)
            cudaGetLastError();  // a hint only: the occupancy below is what the launch gets
        int sms = 0, per_sm = 0;
        const bool ok = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cur) == cudaSuccess &&
                        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kKernel, C8S_THREADS, 0) == cudaSuccess;
        cudaGetLastError();
        slots[cur] = ok ? sms * per_sm : 0;
    }
    return slots[cur];
}

// v12's try_clq with this file's stats kernel and its slots.
template <typename T>
Clp try_cl19(kp_call* call, cudaStream_t s, int32_t* rc) {
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
    if (gs < (v9c_fused_passes_at_least_4<T>(B, C, S) ? int64_t(0) : (int64_t(1) << 18))) return Clp::kRefused;
    const int64_t x_bytes = B * C * S * static_cast<int64_t>(sizeof(T));
    if (gs < kLargeGroup && x_bytes < (int64_t(1) << 20)) return Clp::kRefused;
    if (C % V != 0 || S % V != 0 || C / V > C8S_THREADS) return Clp::kRefused;
    if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 != 0) return Clp::kRefused;
    if (B * G > C8_MAX_ROWS) return Clp::kRefused;
    if (B * C * 4 > kC8CoefFloats) return Clp::kRefused;
    const C8Card& card = c8_card<T>();
    if (card.sms <= 0) return Clp::kRefused;
    const int64_t cvn = C / V, R = C8S_THREADS / cvn;
    // The slots of the instantiation the exactness bound would pick at 16 passes. It only steers
    // the passes (speed): the finalizers' residency check below uses the instantiation that runs.
    const bool f32_at_max = kHalf && R * C8S_MAX_PASSES * cpg <=
                                         (std::is_same<T, __half>::value ? (int64_t(1) << 13) : (int64_t(1) << 16));
    const int slots_max = !kHalf       ? cp19_slots<T, true, double>()
                          : f32_at_max ? cp19_slots<T, false, float>()
                                       : cp19_slots<T, false, double>();
    bool one_wave = false;
    const int passes = static_cast<int>(clq_passes(B, S, R, card.sms, slots_max, &one_wave));
    const int64_t cpb = (S + R * passes - 1) / (R * passes), n_chunks = B * cpb;
    if (B * G * cpb > kPParts) return Clp::kPartials;
    const bool f32_sums =
        kHalf && R * passes * cpg <= (std::is_same<T, __half>::value ? (int64_t(1) << 13) : (int64_t(1) << 16));
    int64_t n_fin = B * G < C8_MAX_FIN ? B * G : C8_MAX_FIN;
    if (n_chunks < n_fin) n_fin = n_chunks;
    int slots = 0;
    if constexpr (!kHalf)
        slots = cp19_slots<T, true, double>();
    else
        slots = f32_sums ? cp19_slots<T, false, float>() : cp19_slots<T, false, double>();
    if (2 * n_fin > slots) return Clp::kRefused;
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
        cp19_stats_kernel<T, TANH, true, double>
            <<<n_stats, C8S_THREADS, 0, s>>>(x, w, b, Ci, Si, G, cpgi, passes, cpbi, kf, nf, count, eps);
        c8_apply_kernel<T, TANH><<<n_apply, C8A_THREADS, 0, s>>>(x, y, Ci, Si, wc_log, static_cast<int>(n_ct),
                                                                 static_cast<int>(n_st), static_cast<int>(B));
    } else {
        if (f32_sums)
            cp19_stats_kernel<T, TANH, false, float>
                <<<n_stats, C8S_THREADS, 0, s>>>(x, w, b, Ci, Si, G, cpgi, passes, cpbi, kf, nf, count, eps);
        else
            cp19_stats_kernel<T, TANH, false, double>
                <<<n_stats, C8S_THREADS, 0, s>>>(x, w, b, Ci, Si, G, cpgi, passes, cpbi, kf, nf, count, eps);
        cp_apply_kernel<T, TANH><<<n_apply, C8A_THREADS, 0, s>>>(x, y, Ci, Si, wc_log, static_cast<int>(n_ct),
                                                                 static_cast<int>(n_st), static_cast<int>(B));
    }
    snprintf(call->path, KP_PATH_LEN, "%s_stats_p%d_keep%d_fin%d_%s+%s_wc%d", one_wave ? "cl19q" : "cl19p", passes,
             static_cast<int>(n_chunks - keep_from), static_cast<int>(n_fin), f32_sums ? "f32" : "f64",
             !kHalf ? "cl8_apply_exact" : (TANH ? "cl8p_apply_tanh" : "cl8p_apply_fma_exact"), 1 << wc_log);
    *rc = launched(call);
    return Clp::kRan;
}

}  // namespace

extern "C" int32_t v19_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

// v12's entry with try_cl19 for try_clq.
extern "C" int32_t v19_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call) && !is_contiguous(call->tensors[0]) && is_channels_last(call->tensors[0])) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const Clp got = dt == KP_F16    ? try_cl19<__half>(call, s, &rc)
                        : dt == KP_BF16 ? try_cl19<__nv_bfloat16>(call, s, &rc)
                                        : try_cl19<float>(call, s, &rc);
        if (got == Clp::kRan) return rc;
        if (got == Clp::kPartials) return kp_group_norm_silu(call, stream_ptr);
    }
    return v10i_group_norm_silu(call, stream_ptr);
}
