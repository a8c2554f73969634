// kpilot-parent: v6 sha256 11ad1c34a2583b593b0c3f93371290ca8137e51c085914f27dd533330257e9e2
// Candidate v6b for tasks/group_norm_silu: v6 with ONE knob changed, the slice: GNS6_RUNS 2 instead
// of 4 (each compute thread loads 2 runs of 16 bytes a slice, so a slice is 8 KB instead of 16 KB:
// 4096 fp16/bf16 or 2048 fp32 elements; the kernel's shared memory 48 KB instead of 96 KB, so 4
// CTAs a SM instead of 2). Everything else, the ticket list, the hang-freedom argument and the
// other paths, is v6's (included whole). Path names carry the knob: l2p_persist_r2_*.
// Why a variant: v6's per-step fixed costs (one barrier, the control lane's ticket, publish and
// flag round trips) are paid once per 16 KB slice by 2 CTAs a SM; here once per 8 KB by 4 CTAs a
// SM. Same bytes in flight a SM (4 x 2 x (8 + 8) KB = 2 x 2 x (16 + 16) KB), twice the steps and
// atomics, twice the CTAs to hide one CTA's barrier and control-lane latency, and half the
// apply data in registers (v6 fp16: 90-96 registers; here launch-bounded to 56: fp16 52 / 56, no spills).
// Prediction (H200, not measured): within 5% of v6 on the rows of 100 MB or more (NOTES.md, v6,
// "v6b"): ahead where the control lane's round trips bound v6's steps, behind where the atomics do.
#define GNS6_RUNS 2
#include "v6.cu"
