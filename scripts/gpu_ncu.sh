#!/usr/bin/env bash
# Nsight Compute digests of the largest production row of every entry point of the issue-9 tasks,
# both sides (`kpilot ncu`, the task's default candidate), on a GPU machine with ncu; binaries
# built elsewhere and carried (scripts/stage_gpu_bins.sh). Specs of scripts/gpu_candidates.sh
# through scripts/gpu_lease.sh (KPILOT_GIT_COMMIT required): digests and CSVs in ncu/<task>/,
# records in ledger/, all in $OUT/results.tgz.
set -u
cd "$(dirname "$0")/.." || exit 7
NCU_ARGS=${NCU_ARGS:---calls 3} exec scripts/gpu_lease.sh \
  ncu:fuse_scale_shift:wan-t2v_fss_S37800_C5120_scale1x1x5120.fp32_shiftfull.bf16 \
  ncu:fuse_scale_shift:qwen-edit_ln_select01_S8424 \
  ncu:fuse_scale_shift:qwen-edit_residual_ln_select01_S8424 \
  ncu:qknorm_rope:joyai-edit_qknorm_rope_T7904_H32 \
  ncu:causal_conv3d_cat_pad:prod_c256_t4_h240_w416__cache2
