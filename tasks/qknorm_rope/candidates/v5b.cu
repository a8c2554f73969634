// kpilot-parent: v5 sha256 a46856bbf852b6bfef472e381d256ca41a6ee609177afcc073d4e2c50104de63
// Candidate v5b for tasks/qknorm_rope: v5 (included below, unchanged) with one knob turned, CTAs an
// SM 3 -> 4 (v2b's 32 warps an SM instead of v5's 24). Four CTAs need the shared memory of a ring
// of S = 2 slots a warp (45184 bytes a CTA; v5's S = 3 takes 65728, so 3 fit) and so the
// end-of-item refill (L = 0: two slots leave no previous slot to refill mid-item): lane 0 issues
// item n's bulk store, waits until it has read the slot (`cp.async.bulk.wait_group.read 0`) and
// refills that slot with item n + 2 at once. ptxas then takes 71 registers, 3 CTAs; asking for 4
// (__launch_bounds__(256, 4)) gives 64 registers, 0 spill, 0 stack in every instantiation (bf16 and
// fp16, int32 and int64 positions), the same code within 16 SASS instructions (1592 against 1576):
// the cap does not bind the item's math (v4c's 106 -> 80 did). What differs from v5, then: 32 warps
// against 24; during item n's rotation one item a warp in flight (n + 1) against v5's two
// (n + 1, n + 2); lane 0 stalls until its store has read the slot; tails: zimage T4096 32768 items
// over 4224 warps = 7.76 a warp (last round 76% full) against 10.34 (34%) under v5, qwen T4096
// 5.82 (82%) against 7.76 (76%).
// Path: v5_tma_inplace_s2_l0_m4_d128_r128_interleaved_vec (the rest as v5: v4b's entry point).
//
// Prediction (H200, against v4b's run 20261201T034141Z-df2dbc67; NOTES.md "v5"): within 2% of v5
// on every large row: joyai T7904 ~69.8 us (89.1% of copy, 92.7% of stream), qwen-edit T8424
// ~56.6 us (88.3%, 92.5%), qwen T4096 ~28.7 us (84.7%, 93.1%), zimage T4096 / T4128 ~34.9 / ~35.4
// us (86.7% / 86.1%, 93.7% / 93.0%); tiny rows `same`. Faster than v5 on the T4096 rows (tails,
// warps), slower on joyai / qwen-edit (depth, the store-read stall).

#define KP_V5_STAGES 2
#define KP_V5_SLACK 0
#define KP_V5_MIN_BLOCKS 4
#include "v5.cu"
