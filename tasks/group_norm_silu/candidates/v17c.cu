// kpilot-parent: v17 sha256 df2157c57a7dc9d388f523fd5d778f558ce3845c3ab4aee38562a41cc9ae44ec
// Candidate v17c for tasks/group_norm_silu: v17 with ONE knob changed, GNS_V17_CHUNK_VECS = 4096: a
// chunk is 64 KB (v17: 16 KB), so a CTA takes a quarter as many steps for the same bytes. With 64 KB
// slots the card holds 3 a CTA at 1 CTA an SM (v17: 6 a CTA, 2 CTAs an SM): P = 132 on the H200.
// Statistics: fp32 over at most 16 elements a thread as in v17, then fp64 (v17's arithmetic; only
// the order of the fp64 additions within a CTA changes).
//
// Why (NVIDIA H200, commit 9128035): v17's second version ran its 10 rows at 0.46-0.64x the
// baseline (run 20261203T160647Z-c9d59138) and v17b, whose finalizer took work off each step, slower still
// (20261203T160842Z-fc7cd14b). ncu of [1,128,17,256,80] (20261203T160842Z-a17afd3c): 160.9 us,
// DRAM at 19.6% of peak, top stall `barrier`: the CTAs wait on one another, and each of a CTA's
// ~21 steps a call carries several dependent L2 round trips (the counter poll, the partials, the
// release fence behind its own stores). Per-step latency, not bytes, sets the pace; four times the
// bytes a step should move four times the bytes a second if the step's latency stays.
//
// PREDICTION (H200, not measured): correct on every row; the 10 rows 1.5-2.5x faster than v17
// (from 27-50% of copy to 50-75%); still short of v12 if a step's latency grows with its bytes.
#define GNS_V17_CHUNK_VECS 4096
#include "v17.cu"
