#!/usr/bin/env bash
# The one spec runner of a GPU machine without Rust (binaries built elsewhere and carried, see
# scripts/stage_gpu_bins.sh). Runs each spec in order, one kpilot command each, and records its
# exit code and wall time in summary.txt. Specs:
#   TASK                    a full run of the task's default candidate (task.toml `candidate`)
#   TASK:CANDIDATE          a full run (the gate's evidence)
#   TASK:CANDIDATE:quick    a --quick run (exit 8, never evidence)
#   TASK:aa                 an A/A run of the task's baseline
#   ncu:TASK:ROW[:CANDIDATE]  an ncu digest of one row, both sides (NCU_ARGS: extra options)
#   fidelity:TASK           the baseline against the pinned upstream (.upstream/ from
#                           scripts/fetch_upstream.sh, carried; FIDELITY_ARGS: extra options)
#   regress[:TASK[,TASK...]]  the nightly job over the anchors of this card (all tasks when
#                           none is named); its markdown and JUnit land beside the logs
# TASK_ARGS: extra options for every `kpilot task` spec above (e.g. "--row-timeout 20", so a
# candidate that hangs costs 20 s a row of the lease instead of the task's row_timeout_s).
# Logs, ledgers and digests land in $OUT/results.tgz; the exit status is the worst of the runs'.
# KPILOT_BIN names another kpilot binary (default target/release/kpilot), KPILOT_RES a new or
# empty scratch folder (default /tmp/kpilot-res, cleared). The copy there has no .git: pass KPILOT_GIT_COMMIT (and
# KPILOT_GIT_DIRTY) so the ledger records which commit ran. scripts/gpu_lease.sh wraps this with
# a build cache and the GPU tests.
set -u
cd "$(dirname "$0")/.." || exit 7
out=${OUT:-/tmp/kpilot-out}; res=${KPILOT_RES:-/tmp/kpilot-res}
# The default scratch folder is this script's own and is cleared; a folder named by KPILOT_RES is
# never deleted: it must be new or empty.
if [ -z "${KPILOT_RES:-}" ]; then rm -rf "$res"
elif [ -e "$res" ] && [ -n "$(ls -A "$res" 2>/dev/null)" ]; then
  echo "gpu_candidates.sh: KPILOT_RES=$res is not empty; name a new or empty folder" >&2; exit 3
fi
mkdir -p "$out" "$res"
export KPILOT_NVCC=${KPILOT_NVCC:-/usr/local/cuda/bin/nvcc} PATH=/usr/local/cuda/bin:$PATH
b=${KPILOT_BIN:-target/release/kpilot}
say() { echo "$*" | tee -a "$res/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv > "$res/machine.txt" 2>&1
say "card: $(sed -n 2p "$res/machine.txt")"
n=0; worst=0
for spec in "$@"; do
  n=$((n + 1))
  IFS=: read -r a1 a2 a3 a4 <<< "$spec"
  start=$(date +%s)
  if [ "$a1" = fidelity ]; then
    # The folder scripts/fetch_upstream.sh made for the task's own pin ([upstream] package-version).
    log="$res/$n-fidelity-$a2.txt"
    pkg=$(sed -n 's/^package = "\(.*\)"$/\1/p' "tasks/$a2/task.toml" | head -1)
    ver=$(sed -n 's/^version = "\(.*\)"$/\1/p' "tasks/$a2/task.toml" | head -1)
    up=".upstream/$pkg-$ver"
    if [ -n "$pkg" ] && [ -n "$ver" ] && [ -d "$up" ]; then
      # shellcheck disable=SC2086 # FIDELITY_ARGS is a list of options
      timeout 900 "$b" fidelity "$a2" --upstream "$up" ${FIDELITY_ARGS:-} >> "$log" 2>&1
    else
      echo "fidelity $a2: no upstream folder '$up' (run scripts/fetch_upstream.sh and carry .upstream/)" >> "$log"; (exit 3)
    fi
  elif [ "$a1" = ncu ]; then
    log="$res/$n-ncu-$a2-${a4:-default}.txt"
    # shellcheck disable=SC2086 # NCU_ARGS is a list of options
    timeout 240 "$b" ncu "$a2" --row "$a3" ${a4:+--candidate "$a4"} ${NCU_ARGS:-} > "$log" 2>&1
  elif [ "$a1" = regress ]; then
    log="$res/$n-regress.txt"
    # shellcheck disable=SC2086 # the task list is split on commas on purpose
    "$b" regress ${a2//,/ } --markdown "$res/$n-regress.md" --junit "$res/$n-regress.junit.xml" > "$log" 2>&1
  elif [ "$a2" = aa ]; then
    log="$res/$n-aa-$a1.txt"
    # shellcheck disable=SC2086 # TASK_ARGS is a list of options
    "$b" task "$a1" --aa ${TASK_ARGS:-} > "$log" 2>&1
  elif [ "${a3:-}" = quick ]; then
    log="$res/$n-quick-$a1-$a2.txt"
    # shellcheck disable=SC2086 # TASK_ARGS is a list of options
    "$b" task "$a1" --candidate "$a2" --quick ${TASK_ARGS:-} > "$log" 2>&1
  else
    log="$res/$n-$a1-${a2:-default}.txt"
    # shellcheck disable=SC2086 # TASK_ARGS is a list of options
    "$b" task "$a1" ${a2:+--candidate "$a2"} ${TASK_ARGS:-} > "$log" 2>&1
  fi
  rc=$?; [ "$rc" -gt "$worst" ] && worst=$rc
  say "$spec: exit $rc, wall $(( $(date +%s) - start )) s; $(grep -m1 -E '^headline|run [0-9]{8}T' "$log" | head -c 200)"
done
cp ledger/*.jsonl "$res/"
cp -r ncu "$res/"
tar czf "$out/results.tgz" -C "$res" .
cat "$res/summary.txt"
# The worst exit code of the runs (kpilot --help): 0 only when every run passed its gate.
exit "$worst"
