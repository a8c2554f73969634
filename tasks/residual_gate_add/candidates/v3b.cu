// kpilot-parent: v3 sha256 e66a39685b7ecb0c23c5c085f80a68cf2bc25ccaff4be069bf9086e67aea7365
//
// Candidate v3b for tasks/residual_gate_add: v3 (included below) with ONE knob changed, the cache
// policy of the flat broadcast path (V3_POLICY 1): residual and update read with ld.global.nc
// (no eviction hint) and out written with a plain write-back st.global, instead of v3's
// ld.global.cs / st.global.cs. That is the policy of the baseline's kda_vec8_full kernel (PTX:
// ld.global.nc.v4.u32 x3, st.global.v4.u32), the same flat one-vector-a-thread shape, which runs
// at 100.9-101.1% of the stream reference on ltx2_full_s8160_c4096 (267 MB; H200 runs
// 20261201T013803Z-4e9f05bb, 20261201T025635Z-5e55a4d1, 20261201T040455Z-3f810f9d), and of
// v2's v1_stream_*_u1 path (ld.global.nc.L1::no_allocate, write-back stores) at 101.5-102.4% of
// it on flux2 S512 (same runs). The .cs shape, fuse_scale_shift v5, ran at 93.7-95.4% of its
// stream reference on every large broadcast-scale row (run 20261201T035113Z-401ecd7a). Same path condition, same gate load (ld.global.nc), same arithmetic
// (bit-identical to the baseline); path "v3_flat1_row_<dt>_nc". The knob is the cache policy,
// not vectors a thread or the block size: fuse_scale_shift v5b already measured two vectors a
// thread as 2-5% slower than one on the same byte mix (run 20261201T035128Z-7d09a57b).
//
// PREDICTION (not measured; H200, cold, against run 20261201T025635Z-5e55a4d1), target = the
// stream reference's us:
//   flux2_bcast_s4096_c3072: target 19.52 us; v3b ~19.7 us (range 19.35-20.3; ~1.02x; ~90.0% of copy)
//   flux2_bcast_s4608_c3072: target 21.53 us; v3b ~21.75 us (range 21.3-22.4; ~1.03x; ~91.8% of copy)
// (central: 99% of the stream reference); every other row as v2 (its code).

#define V3_POLICY 1
#include "v3.cu"
