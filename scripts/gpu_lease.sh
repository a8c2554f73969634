#!/usr/bin/env bash
# One lease of a GPU machine without Rust, driven from a build machine: unpacks the build cache
# made by scripts/pack_build_cache.py (optional, CACHE=path, default .carry/cache.tar), runs the
# selected GPU tests (TESTS="name filters", or TESTS=all; TESTS_TIMEOUT seconds; TESTS_LAST=1
# runs them after the specs instead of before), and scripts/gpu_candidates.sh with the given
# specs under LIMIT seconds. Whatever finished comes back in $OUT/results.tgz (the test log as
# $OUT/gputests.txt) even when the limit cuts the batch short. The exit code is the worst of the
# runs' and the tests'. Carry target/release/kpilot and
# .gpu-bin (scripts/stage_gpu_bins.sh), the cache, and .upstream/ for fidelity specs.
# KPILOT_GIT_COMMIT must name the commit the tree is (the copy has no .git): the ledger records it.
set -u
cd "$(dirname "$0")/.." || exit 7
if [ -z "${KPILOT_GIT_COMMIT:-}" ]; then
  echo "gpu_lease.sh: set KPILOT_GIT_COMMIT to the commit this tree is (git rev-parse --short HEAD)" >&2
  exit 3
fi
# Binaries packed by `XZ=1 scripts/stage_gpu_bins.sh` (python3's tarfile: the machine's tar may
# lack xz): target/release/kpilot and .gpu-bin/gpu-tests. The archive is deleted once unpacked, so
# one left on the machine by an earlier call cannot overwrite binaries carried since.
if [ -f .gpu-bin/bins.tar.xz ]; then
  python3 -c 'import tarfile; tarfile.open(".gpu-bin/bins.tar.xz").extractall(".")' || exit 7
  rm -f .gpu-bin/bins.tar.xz
fi
cache=${CACHE:-.carry/cache.tar}
[ -f "$cache" ] && tar xf "$cache"
export KPILOT_NVCC=${KPILOT_NVCC:-/usr/local/cuda/bin/nvcc} PATH=/usr/local/cuda/bin:$PATH
out=${OUT:-/tmp/kpilot-out}; mkdir -p "$out"
trc=0
gpu_tests() {
  [ -n "${TESTS:-}" ] || return 0
  local filters=$TESTS; [ "$filters" = all ] && filters=
  # shellcheck disable=SC2086 # TESTS is a list of filters
  timeout "${TESTS_TIMEOUT:-200}" .gpu-bin/gpu-tests --ignored --test-threads 1 $filters > "$out/gputests.txt" 2>&1
  trc=$?
  grep -E "^test |test result" "$out/gputests.txt" | tail -40
  echo "gpu tests: exit $trc (log: \$OUT/gputests.txt)"
}
[ -n "${TESTS_LAST:-}" ] || gpu_tests
rc=0
if [ $# -gt 0 ]; then
  timeout "${LIMIT:-520}" scripts/gpu_candidates.sh "$@"; rc=$?
  if [ ! -f "$out/results.tgz" ]; then
    res=${KPILOT_RES:-/tmp/kpilot-res}
    cp ledger/*.jsonl "$res/" 2>/dev/null; cp -r ncu "$res/" 2>/dev/null
    tar czf "$out/results.tgz" -C "$res" .; echo "cut short (rc $rc)"; cat "$res/summary.txt"
  fi
fi
[ -z "${TESTS_LAST:-}" ] || gpu_tests
# The worst of the runs' exit code and the tests' (a failed or cut test run is never hidden).
[ "$trc" -gt "$rc" ] && rc=$trc
exit $rc
