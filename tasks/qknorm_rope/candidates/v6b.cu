// kpilot-parent: v6 sha256 1294b5ccf6e319e5e57a565126897f42be57ab9c3a3ce9aad3b0115a9ceabb4e
// Candidate v6b for tasks/qknorm_rope: v6 (included below, unchanged) with ONE knob turned, the
// CTA's ring 16 -> 12 slots (KP_V6_RING; 1.5 a compute warp on average instead of v4b's and v6's 2).
// Everything else is v6's: 8 compute warps + 1 producer warp a CTA, 2 CTAs an SM, pooled tickets,
// the same math and outputs. ptxas: 96 registers in every instantiation, 0 spill, 0 stack; 31024
// bytes of dynamic shared memory a CTA (v6 41360); 2 CTAs an SM (by registers, as v6).
//
// Why this knob: the only depth evidence is v4 (4 slots a warp) losing to v4b (2) on every large
// row (runs 20261201T034122Z-3f159357 / 20261201T034141Z-df2dbc67), and a ring deeper than the
// memory latency needs costs at the end: the landed items still to be computed when the reads are
// done (up to a ring's worth a CTA) are a compute-only tail. v4b's per-warp rings could not go
// below 2 a warp; v6's pooled ring can, since a compute warp no longer owns its slots. 12 slots
// keep ~7.9 MB of q/k in flight over the grid (v6 ~10.5 MB), enough for ~3.5 us of latency at the
// read rate of 87% of copy; the parity argument needs only more slots than compute warps (12 > 8).
// It tells whether v6's depth is past what the latency needs (v6b faster) or short of it (slower).
// Path: v6_tma_producer_r12_c8_m2_d128_r128_interleaved_vec (other calls: v4b's, as v6).
//
// Prediction (H200, against v4b's run 20261201T034141Z-df2dbc67; NOTES.md "v6"): within 1.5% of
// v6 on every large row, no better than even odds either way: joyai T7904 ~70.3 us (~88.4% of
// copy, ~92.0% of the stream reference), qwen-edit T8424 ~57.0 (~87.6%, ~91.8%), qwen T4096 ~29.1
// (~83.5%, ~91.8%), zimage T4096 / T4128 ~35.2 / ~35.7 (~85.9% / ~85.3%, ~92.9% / ~92.1%); tiny
// rows `same` (v4b's code).

#define KP_V6_RING 12
#include "v6.cu"
