// kpilot-parent: v4d sha256 0c57547670658ecdae2627fe1b46bdceed530b9be697f6db2cf530758bba5855
// Candidate v4e for tasks/qknorm_rope: v4d with ONE knob changed, the ring depth S = 3 slots a warp
// (QK_V4D_STAGES; v4d and v4b: 2). Shared memory 3 x 2568 bytes a warp, 61.6 KB a CTA, still 2 CTAs
// an SM. v4 (S = 4) lost to v4b (S = 2) with the position loaded one iteration ahead; with the
// positions 32 items ahead (v4d) the deeper ring keeps more bytes in flight without the refill
// waiting on them.
// PREDICTION (H200, same lease as v4b and v4d): correct and bit-identical to v4b; 0-3% faster than
// v4d on the large rows if v4d's warps still wait on the slot's data, else within 1% of v4d.
// Path: v4d_tma_ring_pb32_s3_b256x2_d128_r128_interleaved_vec on the ring rows.

#define QK_V4D_STAGES 3
#include "v4d.cu"
