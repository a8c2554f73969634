#!/usr/bin/env bash
# One iteration of an agent's loop (AGENTS.md), end to end, through the kpilot CLI only:
#   brief -> candidate new -> edit -> build -> quick run -> full run
# Each step prints one verdict line on stdout (`agent_loop: <step>: ...`); kpilot's own stderr of a
# step goes to <out>/<step>.log, and its last lines to stderr when the step stops the loop.
#
# Usage: scripts/agent_loop.sh [--root DIR] [--out DIR] <task> <new-candidate-name> [--from PARENT]
#   --root DIR     the kpilot repository root (tasks/, kernels/, ledger/); default: .
#   --from PARENT  baseline or an existing candidate; default: baseline
#   --out DIR      where the step outputs go; default: <root>/.agent-loop/<task>/<name>
#                  brief.json (kpilot brief --json), quick.json and full.json (the run records),
#                  <step>.log (kpilot's stderr of each step)
# Environment:
#   KPILOT  the kpilot binary; default: target/release/kpilot of the repository holding this script
#   EDIT    the edit step: a shell command run with the new candidate file's path as its last
#           argument (e.g. EDIT='python3 my_agent.py --brief .agent-loop/t/n/brief.json'); the
#           edit fails the loop when it exits non-zero. Default: none (the file stays its parent
#           plus the header `candidate new` wrote).
#
# Exit status: 0 when the full run passed the gate; otherwise the step that stopped the loop, with
# kpilot's exit code passed through (kpilot --help): 1 the full run missed the performance gate,
# 2 a correctness failure, crash or hang, 3 bad input, 4 no GPU, driver, nvcc or ncu (on a machine
# without a GPU the loop stops after the build with exit 4: brief, new, edit and build are done),
# 5 nvcc or the ABI, 6 a kpilot bug, 7 the command line (kpilot's, or this script's usage).
# Two are the script's own: 9 the EDIT command failed, 10 the quick run exited other than 8 or 2
# in a way kpilot does not document for it (should not happen).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
KPILOT=${KPILOT:-$here/target/release/kpilot}
EDIT=${EDIT:-}
root=.
out=
from=baseline
args=()

usage() {
  awk '/^# Usage:/{f=1} /^set -uo/{exit} f' "$0" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-7}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || usage; root=$2; shift 2 ;;
    --from) [ $# -ge 2 ] || usage; from=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) echo "agent_loop: unknown option $1" >&2; usage ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 2 ] || usage
task=${args[0]}
name=${args[1]}
[ -x "$KPILOT" ] || { echo "agent_loop: no kpilot binary at $KPILOT (cargo build --release, or set KPILOT)" >&2; exit 7; }
out=${out:-$root/.agent-loop/$task/$name}
mkdir -p "$out" || exit 7

say() { echo "agent_loop: $*"; }

# Stops the loop after a step: its log's last lines on stderr, then the exit status.
stop() {
  local step=$1 code=$2 why=$3
  say "$step: exit $code, $why; stopped (log: $out/$step.log)"
  if [ -s "$out/$step.log" ]; then tail -n 20 "$out/$step.log" | sed "s/^/  $step| /" >&2; fi
  exit "$code"
}

# The first value of a JSON key in a pretty-printed record (string or number), or "?".
field() {
  local v
  v=$(grep -m1 "\"$2\":" "$1" 2>/dev/null | sed -e 's/^[^:]*: *//' -e 's/[",]//g' -e 's/ *$//')
  echo "${v:-?}"
}

meaning() {
  case "$1" in
    0) echo "every gate passed" ;;
    1) echo "correct, performance gate not met (or a partial run)" ;;
    2) echo "a correctness gate failed, or a crash or hang" ;;
    3) echo "bad input (task files, frozen hashes, a missing anchor)" ;;
    4) echo "no GPU, driver, nvcc or ncu" ;;
    5) echo "nvcc failed or the ABI is not met" ;;
    6) echo "a bug in kpilot" ;;
    7) echo "the command line" ;;
    8) echo "a correct --quick run (never gate evidence)" ;;
    *) echo "an exit code kpilot does not document" ;;
  esac
}

kp() { "$KPILOT" --root "$root" "$@"; }

# 1. brief
kp brief "$task" --json >"$out/brief.json" 2>"$out/brief.log"
rc=$?
[ $rc -eq 0 ] || stop brief $rc "$(meaning $rc)"
say "brief: ok, $out/brief.json (brief_schema $(field "$out/brief.json" brief_schema))"

# 2. candidate new
kp candidate new "$task" "$name" --from "$from" >"$out/new.out" 2>"$out/new.log"
rc=$?
[ $rc -eq 0 ] || stop new $rc "$(meaning $rc)"
file=$root/tasks/$task/candidates/$name.cu
[ -f "$file" ] || stop new 6 "kpilot reported success but $file does not exist"
say "new: ok, $file from $from ($(head -n1 "$file"))"

# 3. edit
if [ -z "$EDIT" ]; then
  say "edit: none (EDIT is unset; the candidate is its parent plus the header)"
else
  bash -c "$EDIT \"\$1\"" agent_loop_edit "$file" >"$out/edit.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || stop edit 9 "the EDIT command failed ($rc): $EDIT"
  say "edit: ok, $EDIT $file"
fi

# 4. build (no GPU needed)
kp build "$task" >"$out/build.out" 2>"$out/build.log"
rc=$?
[ $rc -eq 0 ] || stop build $rc "$(meaning $rc)"
say "build: ok, baseline and candidates of $task compiled, ABI checked"

# 5. quick run: a fast look, exit 8 when correct, never gate evidence
kp task "$task" --candidate "$name" --quick --json >"$out/quick.json" 2>"$out/quick.log"
rc=$?
case $rc in
  8) say "quick: exit 8, correct (not gate evidence): headline $(field "$out/quick.json" device_geomean)x, run $(field "$out/quick.json" run_id), $(field "$out/quick.json" wall_seconds) s" ;;
  4) stop quick 4 "$(meaning 4): the loop ends after the build here; on a GPU machine run: kpilot task $task --candidate $name --quick, then the full run" ;;
  2) stop quick 2 "$(meaning 2) (run $(field "$out/quick.json" run_id); read its gates and problems in $out/quick.json)" ;;
  0|1) stop quick 10 "a --quick run exited $rc, which kpilot never does for one" ;;
  *) stop quick $rc "$(meaning $rc)" ;;
esac

# 6. the full run: the only verdict
kp task "$task" --candidate "$name" --json >"$out/full.json" 2>"$out/full.log"
rc=$?
case $rc in
  0|1|2) say "full: exit $rc, $(meaning $rc): headline $(field "$out/full.json" device_geomean)x, run $(field "$out/full.json" run_id)" ;;
  *) stop full $rc "$(meaning $rc)" ;;
esac
exit $rc
