// kpilot-parent: v9 sha256 e434b9295b31eb9b83b9def22ef8fe8800305ebbbd2a3b9c503cd9486a015cb8
// Candidate v9c for tasks/group_norm_silu: v9 with ONE condition changed: v8's fused channels-last
// path also for channels-last groups under 2^18 when its stats kernel would take 4 or more passes a
// chunk (v9: only groups of 2^18 or more). Everything else is v9's file, #included whole; no kernel
// and no host function of v9 changes.
//
// Why: v8 (fused path from 1 MiB of x, run 20261201T110447Z-857ae7ca) against v9 (v5's code under
// 2^18, run 20261201T110658Z-39660402), H200, on all 20 channels-last rows (15 production, 5
// regression) where the two took different paths: the fused path won on every row where its stats
// kernel ran 4 passes a chunk (path cl8_stats_p4: [1,256,9,48,40] 20.71 vs 21.66 us, [1,256,3,48,128]
// 21.35 vs 22.18, [1,128,5,96,80] 21.66 vs 22.88, reg_fp16_cl3d_widey_b3_3x64x8x60x60 24.29 vs 32.38)
// and lost on every row with 1 or 2 passes (16 rows, v9 at 0.63-0.90x of v8's time). v9b's
// threshold (groups above 2^17) splits the production rows the same way but not the regression row
// (a group of 57600 with 4 passes): the pass count fits all 20 rows, the group size 19.
//
// The test: v8's try_cl8 starts at 16 passes and halves while B x ceil(S / (R x passes)) < 4 x SMs
// (R = 256 / (C / V) positions a pass); that count falls with the passes, so the chosen count is 4
// or more exactly when B x ceil(S / (4 R)) >= 4 x SMs. Only channels-last x of 1 MiB or more is
// tested (try_cl8 refuses smaller x under 2^18 anyway), so the host-bound small rows make no
// device query; the rest read v8's cached per-device card (one cudaGetDevice), as try_cl8 does.
// Where the test holds, try_cl8 runs with all its own conditions; where they fail, v9's path as before.
//
// PREDICTION (H200, not measured): the four rows above at v8's times (production rows 4-5% faster
// than v9, the regression row about 25% faster), every other row as v9 (+-1%); headline about +0.2%
// over v9 (3 of 80 production signatures); launch-inclusive unchanged on the small rows.

#include <cstdint>

template <typename T>
bool v9c_fused_passes_at_least_4(int64_t B, int64_t C, int64_t S);

#define GNS_V9_MIN_GROUP (v9c_fused_passes_at_least_4<T>(B, C, S) ? int64_t(0) : (int64_t(1) << 18))
#include "v9.cu"

template <typename T>
bool v9c_fused_passes_at_least_4(int64_t B, int64_t C, int64_t S) {
    constexpr int64_t V = Vec<T>::N;
    if (B * C * S * static_cast<int64_t>(sizeof(T)) < (int64_t(1) << 20)) return false;
    if (C % V != 0 || C / V > C8S_THREADS) return false;  // try_cl8 refuses these
    const int64_t R = C8S_THREADS / (C / V);
    const int sms = c8_card<T>().sms;
    if (R <= 0 || sms <= 0) return false;
    return B * ((S + 4 * R - 1) / (4 * R)) >= 4 * static_cast<int64_t>(sms);
}
