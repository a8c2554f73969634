// kpilot-parent: v8 sha256 e68332300b51551e5fd358053739794458f7efd2ccaf768511fc8cbacaf10b0c
// Candidate v8b for tasks/group_norm_silu: v8 with ONE knob changed, GNS_V8_TANH = 0: the fp16/bf16
// apply keeps v8's FMA fold (y = fma(x, a, c), a = rstd*w and c = b - mean*a per channel, float64
// rounded once) but computes silu(y) as v7 did, y / (1 + ex2.approx(-y log2 e)) with div.full (two
// MUFU ops and the division's fix-up an element) instead of fma(h, tanh.approx(h), h), h = y/2.
// Everything else (stats with the folded finalize, the register-transpose apply, dispatch) is
// v8's file, #included whole. fp32 output is identical in v8 and v8b (v7's norm_silu in both).
// ptxas: c8_apply_kernel fp16 70 registers, bf16 72, fp32 36; c8_stats_kernel 64; no spills.
//
// Why: to isolate the tanh form's share of v8's gain (and give an exact-sigmoid fallback if the
// tanh form's error, bounded in NOTES.md v8, is not wanted): v8 vs v8b is the math alone.
//
// PREDICTION (H200, not measured; NOTES.md, v8): v8b 0-5% slower than v8 on the 151-570 MB
// channels-last rows ([1,128,17,256,256] CL 230-255 us) if the register-transpose apply is
// memory-bound with either math; up to 10% slower if the second MUFU op binds (MUFU work an
// element doubles: about 68 us of MUFU time on the 570 MB row at 16 ops/clk/SM, under the
// apply's 130-150 us but no longer far under it). Small rows (under 20 MB) the same as v8.

#define GNS_V8_TANH 0
#include "v8.cu"
