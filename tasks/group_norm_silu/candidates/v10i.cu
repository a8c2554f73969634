// kpilot-parent: v10h sha256 4a213f714b03ddfbbe3e907c8779054a1466588bc4157cfefbc4278a75ec5ff4
// Candidate v10i for tasks/group_norm_silu: v10h with ONE change: the fused channels-last path's
// statistics (v8's c8_stats_kernel, reached through v9c for channels-last x) no longer shift by the
// group's first element. Every kernel and every other path is v10h's, #included whole.
//
// Why. v8's stats kernel sums d = x - K in fp32 a thread (K = the group's first element,
// x[b, spatial 0, channel g*cpg]) and finalizes mean = K + E[d], var = E[d^2] - E[d]^2. That is
// v10e's defect on another path: with K far from the group's mean, d^2 is about K^2 and the
// variance cancels in fp32. v10f to v10h removed the shift from the contiguous cluster path after
// the outlier stress rows caught it (run 20261202T015254Z-cf754ea5), but those rows are contiguous
// and never reached the channels-last path. A CPU emulation of c8_stats_kernel (group 0, its exact
// order: the thread's fp32 chain over the passes, the CTA's fp32 lane sums and butterfly, fp64
// over the CTA partials) on channels-last fp32 [1, 64, 8, 128, 128] (the fused path, 8 passes)
// with x[0, 0, 0, 0, 0] = 1000 and the rest uniform(-2, 2): 243,670 of group 0's 262,144 outputs
// out of the fp32 tolerance (worst 33.6x), variance 5.1421 against 5.1456; without the shift none
// (worst 0.002x). fp16 [1, 64, 8, 128, 128] and [1, 128, 17, 96, 80] pass either way (worst 0.09x
// and 0.06x of the fp16 tolerance). The rows re-frozen on 2026-12-02 add both as stress rows.
//
// The change. With no shift the sums are upstream's formula (E[x^2] - mean^2, fp32 sums of x and
// x^2), a thread's fp32 chain at most 16 elements (the stats kernel's passes; upstream's chunked
// stats chain is 16), then v8's fp32 lane sums in the CTA and fp64 over the CTA partials, as before.
// It is made without editing v8.cu (whose hash earlier runs pin): the non-template overloads of
// c8_shift below, declared in the same unnamed namespace as v8's template before v8.cu is
// #included, return 0 for each element type. Overload resolution prefers a non-template function
// to a template specialization with the same conversions, so both of v8's calls (the stats
// kernel's shift of every lane, and the finalizer's mean = shift + E[d]) take them: every shift is
// 0, a masked lane's filler is 0 (d = 0), and mean = E[x]. The PTX of c8_stats_kernel loses the
// shift's loads (checked with nvcc -ptx against v10h; NOTES.md).
//
// Path: v10h's, except that a fused channels-last path's name gets `cl8ns_` for `cl8_` in front
// (cl8ns_stats_p16_keep480_fin32+cl8_apply_tanh_wc4), so the ledger tells the two apart.
//
// PREDICTION (H200, not measured): every row within v10h's lease-to-lease spread of its times
// (the shift's one load a lane and one subtraction an element gone: nothing measurable); the new
// fp32 channels-last outlier row correct with v10i and out of tolerance with v10h; the fp16 one
// correct with both.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kpilot_abi.h"

namespace {
// v8's c8_shift<T> (candidates/v8.cu) reads x[bt*C*S + g*cpg]; these win overload resolution
// against it for every element type the fused path takes (see the header).
__device__ __forceinline__ float c8_shift(const __half*, int64_t, int, int, int, int) { return 0.0f; }
__device__ __forceinline__ float c8_shift(const __nv_bfloat16*, int64_t, int, int, int, int) { return 0.0f; }
__device__ __forceinline__ float c8_shift(const float*, int64_t, int, int, int, int) { return 0.0f; }
}  // namespace

// v10h, whole, its entry under another symbol (as v9 does with v8, v10h with v9c).
extern "C" int32_t v10_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("gns_v10h_group_norm_silu");
#pragma nv_diag_suppress 1306
#include "v10h.cu"
#pragma nv_diag_default 1306

extern "C" int32_t v10i_group_norm_silu(kp_call* call, void* stream_ptr) __asm__("kp_group_norm_silu");

extern "C" int32_t v10i_group_norm_silu(kp_call* call, void* stream_ptr) {
    const int32_t rc = v10_group_norm_silu(call, stream_ptr);
    if (rc == KP_OK && strncmp(call->path, "cl8_", 4) == 0) {
        char renamed[KP_PATH_LEN];
        snprintf(renamed, sizeof renamed, "cl8ns_%s", call->path + 4);
        memcpy(call->path, renamed, sizeof renamed);
    }
    return rc;
}
