// kpilot-parent: v9 sha256 e434b9295b31eb9b83b9def22ef8fe8800305ebbbd2a3b9c503cd9486a015cb8
// Candidate v9b for tasks/group_norm_silu: v9 with ONE knob changed, GNS_V9_MIN_GROUP = 2^17 + 1:
// v8's fused channels-last path also for channels-last groups of more than 2^17 elements (v9: 2^18
// or more). Everything else is v9's file, #included whole.
//
// Why: on the H200, v8 (fused path from 1 MiB of x, run 20261201T110447Z-857ae7ca) against v9 (v5's
// code under 2^18, run 20261201T110658Z-39660402) on the production channels-last rows with groups
// between 2^16 and 2^18: the fused path lost on every group of 2^17 or less (81920-131072 elements,
// 2-pass stats: v9 0.85-0.90x of v8's time) and won on every group above it (138240, 147456, 153600
// elements, 4-pass stats: [1,256,9,48,40] 20.71 vs 21.66 us, [1,256,3,48,128] 21.35 vs 22.18,
// [1,128,5,96,80] 21.66 vs 22.88). No production row has a group between 131072 and 138240, so any
// threshold in (2^17, 138240] splits them the same way; 2^17 + 1 is the one that says "more than
// 2^17". Fitted to three rows: the run decides.
//
// PREDICTION (H200, not measured): the three rows above at v8's times (about 4-5% faster than v9),
// every other row as v9 (+-1%); headline about +0.2% over v9 (3 of 80 rows).

#define GNS_V9_MIN_GROUP ((int64_t(1) << 17) + 1)
#include "v9.cu"
