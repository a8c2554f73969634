#!/usr/bin/env bash
# The evidence session on a GPU machine without Rust (binaries built elsewhere and carried, see
# scripts/stage_gpu_bins.sh): the main job twice (cold, then warm build cache; summary.txt has
# each wall time), every other task, an A/A run of every task (the noise floor; each must fail the
# gate, exit 1), the Nsight Compute digest of the largest fuse_scale_shift row, then the GPU tests.
# Specs of scripts/gpu_candidates.sh through scripts/gpu_lease.sh (KPILOT_GIT_COMMIT required);
# everything lands in $OUT/results.tgz and $OUT/gputests.txt. Fidelity: scripts/gpu_fidelity.sh.
set -u
cd "$(dirname "$0")/.." || exit 7
specs=(fuse_scale_shift fuse_scale_shift)
for d in tasks/*/task.toml; do t=$(basename "$(dirname "$d")"); [ "$t" = fuse_scale_shift ] || specs+=("$t"); done
for d in tasks/*/task.toml; do specs+=("$(basename "$(dirname "$d")"):aa"); done
specs+=("ncu:fuse_scale_shift:wan-t2v_fss_S37800_C5120_scale1x1x5120.fp32_shiftfull.bf16")
# No build cache unless CACHE names one, so the first main job builds cold.
CACHE=${CACHE:-none} TESTS=${TESTS:-all} TESTS_LAST=1 TESTS_TIMEOUT=${TESTS_TIMEOUT:-300} \
  LIMIT=${LIMIT:-5400} exec scripts/gpu_lease.sh "${specs[@]}"
