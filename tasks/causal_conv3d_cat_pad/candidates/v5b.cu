// kpilot-parent: v5 sha256 5a4793e7562c53031ac99d483f1d050064494c8f7f3a9088cbe30fe372c26fe4
//
// Candidate v5b for tasks/causal_conv3d_cat_pad: v5 with ONE knob changed, V5_FOLD 0. The zero
// planes are CTAs of their own again (v4's grid, (bands, T_out, N * C)), now zero-filled with
// v5's 128-byte-aligned stores; the data CTAs are v5's (conflict-free staging, SHFL fifth word,
// line-aligned loads and stores). The pair separates the fold's share on the cache1 row
// (prod_c1024_t2_h60_w104__cache1: v5 path img5_fold_u16_t128_b8064, v5b img5_u16_t128_b8064);
// every other row runs the same code in both (cache2: img5_u16_t128_b8064; the rest v4's).
// PREDICTION (not measured; H200, cold, against run 20261201T013257Z-00ac2279):
//   c1024 t2 h60 w104 cache1: 24.3 us (23.5-25.4), 89.1% of copy (v5: 23.9 us, 90.6%)
//   c1024 t2 h60 w104 cache2: as v5, 26.6 us (25.9-27.6), 92.7%
//   every other row: v4's code, v4's times within noise.
#define V5_FOLD 0
#include "v5.cu"
