// kpilot-parent: v19 sha256 1d52c4249b6ac0010274bacf21bee02cbd0276a6995c2abde26a1ae9c1e84091
// Candidate v19c for tasks/group_norm_silu: v19's file at v12's occupancy (4 CTAs an SM) with 16
// loads in flight a thread instead of v12's 8: against v12 ONE knob, the unroll.
// Why: in one lease (NVIDIA H200, runs 20261203T195255Z-1c367fa2 v12, 20261203T195507Z-4947600e v19,
// 20261203T195721Z-7b102415 v19b) the channels-last rows ordered by the stats kernel's bytes in flight
// an SM: v19 (8 CTAs x 2 loads x 16 B x 256 threads, 64 KB) 0.81-0.94x v12's speedup, v19b (5 x 4,
// 80 KB) 0.87-0.98x, v12 (4 x 8, 128 KB). v19c has 256 KB in flight an SM.
// ptxas (sm_90a, nvcc 13.0), the fp16 kernel with fp32 CTA sums: 64 registers, 32 bytes of spill
// stores and 32 of spill loads (v12's: 64 registers, none).
// PREDICTION (H200, same lease as v12, the channels-last rows only): correct and bit-identical to v12;
// the 16-pass channels-last rows (64-570 MB) 3-8% faster than v12 if bytes in flight is the lever;
// the one-wave rows with fewer passes (masked loads) within 3% of v12.
// Path: as v19's (cl19p / cl19q).

#define GNS_V19_MINB 4
#define GNS_V19_UNROLL 16
#include "v19.cu"
