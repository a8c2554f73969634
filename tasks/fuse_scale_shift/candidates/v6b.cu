// kpilot-parent: v6 sha256 5b88226fb1f468499363fd8e6ee1e741920cb37829ba30e3cde2fe9b49d1df14
//
// Candidate v6b: v6 with ONE knob changed, the threads a row: 192 (6 warps, 2 16-byte vectors a
// thread) instead of 128 (4 warps, 3 vectors), C = 3072 either way. The register cap follows v6's
// rule (the most CTAs an SM at which ptxas reports no spill): EP2 8 CTAs of 192 (40 registers), EP3
// 6 (56 registers); ptxas -v (sm_90a, CUDA 13.0): 0 bytes stack, 0 spills, 48 bytes shared. Rows in
// flight an SM: EP2 8 (48 KB of x) against v6's 10 (60 KB), EP3 6 (108 KB) against v6's 7 (126 KB);
// a thread has 2 loads of each streamed row in flight instead of 3, and 1536 / 1152 threads an SM
// instead of 1280 / 896. Numerics: the 6 warp partials are added in warp order (v6 keeps the
// baseline's (w0 + w2) + (w1 + w3) of 4 warps, bit-identical), so outputs may differ from the
// baseline's by a bf16 rounding step, within the task's tolerance. Paths ln_select01_row192x2,
// residual_ln_select01_row192x2.
//
// PREDICTION (not measured; H200, run 20261201T035634Z-129187d7's baseline): within 1% of v6, a
// little slower if rows in flight an SM are what v6 gains from: EP2 ~40.6 us (~1.013x, ~90.2% of
// copy), EP3 ~77.2 us (~1.009x, ~94.9% of copy); every EP1 row `same`.

#define V6_THREADS 192
#define V6_VECS 2
#define V6_MINB_EP2 8
#define V6_MINB_EP3 6
#include "v6.cu"
