// kpilot-parent: v10p sha256 465fa608de7bf6c8a47627aa29f1e88668a34bc2483cbac8ebecbce1e1683489
// Candidate v12 for tasks/group_norm_silu: v10p (#included whole, its entry under another symbol)
// with ONE change: how many passes (4 KB of x a pass) a fused channels-last stats CTA takes.
//
// Why. v7's rule, kept by v8 to v10p: start at 16 passes and halve while the grid would have
// fewer than 4 CTAs a SM. The stats kernel holds 4 CTAs a SM (528 on the H200), so the rule
// always leaves at least one full wave, and on the mid-size rows between one and two: [1,128,5,96,80]
// CL 600 chunks of 4 passes (1.14 waves), [1,128,17,96,80] CL 1020 of 8 (1.93). The CTAs of the
// last, partial wave start only when the first wave's finish, each does its loads, its CTA
// reduction, its partials and its ticket again, and the finalizers wait for them. ncu of
// [1,128,5,96,80] CL (run 20261202T183222Z-fb0107ee, v10p): the stats kernel 12.86-13.15 us for
// 9.8 MB of x (0.75 TB/s; DRAM 15.7% of peak, top stalls barrier, not_selected,
// short_scoreboard, long_scoreboard), the apply after it 6.75-7.39 us.
//
// The change (try_clq, otherwise try_clp line for line): when 16 passes would fit the grid in
// one wave of the kernel's resident CTAs (B * chunks <= slots), take the fewest passes that
// still do (5-16 on the 10 production rows it changes); otherwise v10p's rule (16 passes, more
// than one wave). Passes that are not a multiple of 8 take the stats kernel's masked loads (as
// v10p's 4-pass rows do). The fp32 CTA sums' exactness bound (R * passes * cpg elements of a
// group a CTA) is checked on the new count as before; on every production row R * cpg = 64, so
// 16 passes stay inside fp16's 2^13.
//
// Rows it changes (H200, 528 slots; chunks and waves before -> after):
//   [1,512,5,64,64] 640 (1.21) -> 512 (0.97); [1,256,9,128,40] 720 (1.36) -> 524 (0.99);
//   [1,256,9,48,128] 864 (1.64) -> 494 (0.94); [1,256,9,48,40] 540 (1.02) -> 432 (0.82);
//   [1,128,17,96,80] 1020 (1.93) -> 510 (0.97); [1,256,3,128,128] 768 (1.45) -> 512 (0.97);
//   [1,128,5,256,80] 800 (1.52) -> 493 (0.93); [1,256,3,48,128] 576 (1.09) -> 461 (0.87);
//   [1,128,5,96,256] 960 (1.82) -> 512 (0.97); [1,128,5,96,80] 600 (1.14) -> 480 (0.91).
// The five largest CL rows (16 passes, 2.2-8.2 waves) are unchanged.
//
// PREDICTION (H200, not measured): every row correct (the kernels and their arithmetic are
// v10p's; only the grid and the per-CTA chain length change, within the exactness bound). On the
// 10 rows above the stats kernel loses one partial wave and half its partials: 1-3 us a row off
// v10p's 17.95-36.07 us (run 20261202T182531Z-e8a85ecb), 5-12%; the stats kernel of
// [1,128,5,96,80] CL under ncu 9-11 us (v10p 12.86-13.15). If the second wave was hiding load
// latency rather than adding a tail, these rows get slower instead. Every other row v10p's.
// Path: `cl8q_stats_p<passes>_...` where the new rule ran, v10p's names elsewhere.

#include <stdint.h>

#include "kpilot_abi.h"

extern "C" int32_t v10p_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v10p_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v10p.cu"
#pragma nv_diag_default 1306

namespace {

// Passes a stats CTA: v10p's rule unless 16 passes fit one wave of `slots`; then the fewest that
// do. `one_wave` says which rule chose.
int64_t clq_passes(int64_t B, int64_t S, int64_t R, int64_t sms, int64_t slots, bool* one_wave) {
    const int64_t pmax = C8S_MAX_PASSES;
    *one_wave = slots > 0 && B * ((S + R * pmax - 1) / (R * pmax)) <= slots;
    if (*one_wave) {
        int64_t p = 1;
        while (p < pmax && B * ((S + R * p - 1) / (R * p)) > slots) ++p;
        return p;
    }
    int64_t p = pmax;
    while (p > 1 && B * ((S + R * p - 1) / (R * p)) < 4 * sms) p /= 2;
    return p;
}

template <typename T>
Clp try_clq(kp_call* call, cudaStream_t s, int32_t* rc) {
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
    const int slots_max = !kHalf       ? cp_slots<T, true, double>()
                          : f32_at_max ? cp_slots<T, false, float>()
                                       : cp_slots<T, false, double>();
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
        slots = cp_slots<T, true, double>();
    else
        slots = f32_sums ? cp_slots<T, false, float>() : cp_slots<T, false, double>();
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
    snprintf(call->path, KP_PATH_LEN, "%s_stats_p%d_keep%d_fin%d_%s+%s_wc%d", one_wave ? "cl8q" : "cl8p", passes,
             static_cast<int>(n_chunks - keep_from), static_cast<int>(n_fin), f32_sums ? "f32" : "f64",
             !kHalf ? "cl8_apply_exact" : (TANH ? "cl8p_apply_tanh" : "cl8p_apply_fma_exact"), 1 << wc_log);
    *rc = launched(call);
    return Clp::kRan;
}

}  // namespace

extern "C" int32_t v12_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

// v10p's entry with try_clq for try_clp.
extern "C" int32_t v12_group_norm_silu(kp_call* call, void* stream_ptr) {
    if (resident_call(call) && !is_contiguous(call->tensors[0]) && is_channels_last(call->tensors[0])) {
        cudaStream_t s = static_cast<cudaStream_t>(stream_ptr);
        int32_t rc = KP_OK;
        const int32_t dt = call->tensors[0].dtype;
        const Clp got = dt == KP_F16    ? try_clq<__half>(call, s, &rc)
                        : dt == KP_BF16 ? try_clq<__nv_bfloat16>(call, s, &rc)
                                        : try_clq<float>(call, s, &rc);
        if (got == Clp::kRan) return rc;
        if (got == Clp::kPartials) return kp_group_norm_silu(call, stream_ptr);
    }
    return v10i_group_norm_silu(call, stream_ptr);
}
