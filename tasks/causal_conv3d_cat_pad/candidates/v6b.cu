// kpilot-parent: v6 sha256 62cf28617cea642003966f007b3f680bf526145e10abcb9268d2df73d6b39843
//
// Candidate v6b for tasks/causal_conv3d_cat_pad: v6 with ONE knob changed, V6_LDG_STAGE 1: the
// band's source run is staged as in v4 (one LDG.128 a 16-byte unit, all of a thread's loads
// first, then 4 STS.32 a unit after the zero words; lanes 16 bytes apart, so a 4-way bank conflict,
// 16 wavefronts a warp-unit) instead of v6's LDGSTS.32 (cp.async, one instruction per 4 bytes and
// lane, conflict-free, no registers). Everything else is v6's (128-byte-line rotation of loads and
// stores, the lean fold, one-loop zero words, the LDS.128 + LDS.32 + 4 SHF write). The pair
// separates the staging's instructions (c1024 rows, warp-level path through the SASS: v6 ~130
// warp-instructions a warp, v6b ~100; whole kernel ~430 / ~380 a warp with the fold, ~101 / ~89
// thread-instructions per 16 output bytes) from its shared-memory wavefronts (per 512 bytes
// staged: v6 ~9 (4 line reads + ~5 image writes), v6b ~20 (4 + 16); whole kernel ~21 / ~33 per
// 512 bytes moved, v4's ~33). 32 registers, no spills.
// Paths: `img6_fold_ldg16_s1_t128_b8064` / `img6_ldg16_s1_t128_b8064` (`_s0` when wl is even).
// PREDICTION (not measured; H200, cold; see NOTES.md, v6): c1024 t2 h60 w104 cache1 24.8 us
// (23.8-25.5), 87.2% of copy; cache2 27.6 us (27.0-28.3), 89.2%; the c512 and c256 rows within
// +-2% of v6. If v6b beats v6, the wavefronts no longer matter and instructions do.
#define V6_LDG_STAGE 1
#include "v6.cu"
