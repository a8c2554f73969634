// kpilot-parent: v17c sha256 55379d25051224eee1fb15af0dc487905f19cf423b53942e6cde4d3af1b3419c
// Candidate v17d for tasks/group_norm_silu: v17c with ONE knob changed, GNS_V17_STORE_FREE_WARP0 =
// 1: warp 0, whose lane 0 publishes a unit's sums (a fence and a release increment) and polls the
// counters, takes no part in the apply, so it has no stores of y in flight. In v17c lane 0 of warp
// 0 stored 8 vectors of y a 64 KB chunk with st.global.cs; a release fence waits until the
// thread's earlier writes are performed, and behind a loaded write path that is an unknown number
// of microseconds on the one thread every other warp of the CTA waits for at the step's barrier.
//
// Why (NVIDIA H200, commit 8b8af01): v17c ran its 10 rows at 0.67-0.88x the baseline, a CTA's 64
// KB step costing about 10 us with 15 of its 16 warps waiting at the barrier (ncu
// 20261203T161817Z-396e4d1b, top stall `barrier`, DRAM 33% of peak).
//
// PREDICTION (H200, not measured): correct on every row (the same arithmetic; only which threads
// store changes). If the fence behind the stores is a large part of the step, the 10 rows run
// 1.2-1.6x faster than v17c; if it is not, within 5% of v17c (the apply's issue rate falls by a
// sixteenth).
#define GNS_V17_CHUNK_VECS 4096
#define GNS_V17_STORE_FREE_WARP0 1
#include "v17.cu"
