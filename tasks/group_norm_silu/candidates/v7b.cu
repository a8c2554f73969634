// kpilot-parent: v7 sha256 649ed33337cf9353bd58775b5e8245b7c0cb9fd26808cd75cb1752566395b959
// Candidate v7b for tasks/group_norm_silu: v7 with ONE knob changed, GNS_V7_MIN_X_BYTES = 1 MiB:
// v7's fused channels-last path (stats from x in its own layout, float64 finalize, apply fused
// with the transpose; three launches, no counters) also below the chunked domain, for every
// channels-last x of 1 MiB or more. Everything else is v7's file, #included whole.
//
// Why: v5 runs those rows as v3's tiled transpose + v2's resident kernel in place on y. In the H200
// anchor run 20261201T042116Z-a8535f77 the 15 production channels-last rows of 3.3-19.7 MB
// (x 1.6-9.8 MB) take 12.8-23.1 us, of which 10.8-18.4 us is the resident kernel (their contiguous
// twins' times), while the row's stream reference (one elementwise launch moving the same bytes) is
// 3.1-6.9 us: the resident kernel is latency-bound (one wave, a grid-wide wait, a shared-memory
// round trip), not byte-bound. v7's path there: the stats pass reads x from DRAM in 400-2400 short
// CTAs, the finalize is one small launch, and the apply re-reads x from the L2 (x is under half
// the L2, all of it read at normal priority) and writes y. The 5 smaller channels-last rows
// (x under 1 MiB, 5.7-10.8 us in v5) keep v5: three launches cost about 6-8 us there.
//
// PREDICTION (H200, not measured; v5 from run 20261201T042116Z-a8535f77): the 15 rows of 3.3-19.7 MB
// at 6.5-13 us (v5 12.8-23.1 us): 1.4-2.2x over v5, the largest gains on the 10-20 MB rows; the risk
// is the launch floor (three dependent launches of a few hundred short CTAs) on the 3-6 MB rows,
// where v7b may land `same` as v5 (about 1.0-1.4x). Every other row as v7.

#define GNS_V7_MIN_X_BYTES (int64_t(1) << 20)
#include "v7.cu"
