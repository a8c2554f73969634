#!/usr/bin/env bash
# Nsight Compute digests of the largest production row of every task and entry point, both sides
# (`kpilot ncu`), on a GPU machine with ncu; binaries built elsewhere and carried (see
# scripts/stage_gpu_bins.sh). Digests and CSVs land in ncu/<task>/, records in ledger/; both are
# also packed into $OUT/ncu.tgz. Pass KPILOT_GIT_COMMIT when the copy has no (or a stale) .git.
set -u
cd "$(dirname "$0")/.."
export KPILOT_NVCC=${KPILOT_NVCC:-/usr/local/cuda/bin/nvcc} PATH=/usr/local/cuda/bin:$PATH
out=${OUT:-/tmp/kpilot-out}; mkdir -p "$out"
b=target/release/kpilot
rc=0
while read -r task row; do
  [ -z "$task" ] && continue
  echo "== $task $row"
  "$b" ncu "$task" --row "$row" --calls 3 > "$out/ncu-$task-${row:0:40}.txt" 2>&1 || { rc=$?; tail -5 "$out/ncu-$task-${row:0:40}.txt"; }
  grep -E "^\| (duration|device time|DRAM throughput|bottleneck)" "$out/ncu-$task-${row:0:40}.txt"
done <<'ROWS'
fuse_scale_shift wan-t2v_fss_S37800_C5120_scale1x1x5120.fp32_shiftfull.bf16
fuse_scale_shift qwen-edit_ln_select01_S8424
fuse_scale_shift qwen-edit_residual_ln_select01_S8424
qknorm_rope joyai-edit_qknorm_rope_T7904_H32
causal_conv3d_cat_pad prod_c256_t4_h240_w416__cache2
ROWS
tar czf "$out/ncu.tgz" ncu ledger
exit $rc
