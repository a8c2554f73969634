// kpilot-parent: v19 sha256 1d52c4249b6ac0010274bacf21bee02cbd0276a6995c2abde26a1ae9c1e84091
// Candidate v19b for tasks/group_norm_silu: v19 with its two knobs at 5 CTAs an SM and 4 loads in
// flight a thread (v19: 8 and 2; v12: 4 and 8). ptxas (sm_90a, nvcc 13.0), the fp16 kernel with fp32
// CTA sums (the production rows' instantiation): 48 registers, 12 bytes of spill stores and 24 of
// spill loads, where v19's (32 registers) has 32 and 104 and v12's (64 registers) none. Where in the
// kernel the spills sit was not read.
// PREDICTION (H200, same lease as v12 and v19): correct and bit-identical to v12; between v12 and
// v19 on the channels-last rows if occupancy is the lever, faster than v19 if v19's spills or its
// two loads a thread cost more than its extra CTAs gain.
// Path: as v19's (cl19p / cl19q).

#define GNS_V19_MINB 5
#define GNS_V19_UNROLL 4
#include "v19.cu"
