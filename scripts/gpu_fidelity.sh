#!/usr/bin/env bash
# One GPU session for the fidelity evidence (binaries built elsewhere and carried, see
# scripts/stage_gpu_bins.sh; the pinned upstream from scripts/fetch_upstream.sh, carried as
# .upstream/): `kpilot fidelity` of every task against the pinned upstream release, then every
# task's candidate against its (re-pinned) baseline. Logs and ledgers land in $OUT/results.tgz.
# Pass KPILOT_GIT_COMMIT (and KPILOT_GIT_DIRTY): the copy there has no .git.
# Usage: scripts/gpu_fidelity.sh [TASK...]          (default: every task)
#        FIDELITY_ONLY=1 scripts/gpu_fidelity.sh    (skip the task runs)
set -u
cd "$(dirname "$0")/.."
out=/tmp/kpilot-fid; rm -rf "$out"; mkdir -p "$out"
export KPILOT_NVCC=${KPILOT_NVCC:-/usr/local/cuda/bin/nvcc} PATH=/usr/local/cuda/bin:$PATH
b=target/release/kpilot
up=$(ls -d .upstream/*/ 2>/dev/null | head -n 1)
tasks=("$@"); [ ${#tasks[@]} -gt 0 ] || tasks=(fuse_scale_shift qknorm_rope causal_conv3d_cat_pad)
say() { echo "$*" | tee -a "$out/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader > "$out/machine.txt" 2>&1
say "card: $(cat "$out/machine.txt"); upstream: $up"
timed() { local name=$1; shift; local s; s=$(date +%s); "$@" > "$out/$name.log" 2>&1; say "$name: exit $?, wall $(( $(date +%s) - s )) s"; }
for t in "${tasks[@]}"; do timed "fidelity-$t" "$b" fidelity "$t" --upstream "$up" ${FIDELITY_ARGS:-}; done
if [ -z "${FIDELITY_ONLY:-}" ]; then
  for t in "${tasks[@]}"; do timed "task-$t" "$b" task "$t"; done
fi
cp ledger/*.jsonl "$out/" 2>/dev/null
tar czf "${OUT:-/tmp}/results.tgz" -C "$out" .
for t in "${tasks[@]}"; do tail -n 30 "$out/fidelity-$t.log"; done
cat "$out/summary.txt"
