#!/usr/bin/env bash
# The nightly regression on a Slurm cluster: an array job, one shard per GPU node, then a merge
# job that runs after all shards (whatever their exit) and fails on missing coverage or a
# confirmed regression. Run from a checkout with target/release/kpilot built
# (scripts/stage_gpu_bins.sh). Usage: scripts/slurm_nightly.sh [SHARDS] [TASK...]
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${1:-2}; shift || true
tasks="$*"
mkdir -p slurm-out
rm -f slurm-out/ids-*.txt
array=$(sbatch --parsable --array=1-"$shards" --gres=gpu:1 --output=slurm-out/shard-%a.log \
  --wrap "target/release/kpilot regress $tasks --shard \${SLURM_ARRAY_TASK_ID}/$shards \
          --junit slurm-out/junit-\${SLURM_ARRAY_TASK_ID}.xml --ids-out slurm-out/ids-\${SLURM_ARRAY_TASK_ID}.txt")
# Shards append to the ledgers of this checkout (one short append per record, O_APPEND); the merge
# reads the ids the shards wrote.
sbatch --dependency=afterany:"$array" --output=slurm-out/merge.log --wrap '
  status=0
  for t in $(cat slurm-out/ids-*.txt | cut -d" " -f1 | sort -u); do
    ids=$(cat slurm-out/ids-*.txt | awk -v t="$t" "\$1 == t {print \$2}")
    target/release/kpilot merge "$t" $ids --junit "slurm-out/junit-merged-$t.xml" || status=$?
  done
  exit $status'
echo "submitted array job $array ($shards shards) and its merge; logs in slurm-out/"
