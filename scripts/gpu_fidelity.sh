#!/usr/bin/env bash
# One GPU session for the fidelity evidence (binaries built elsewhere and carried, see
# scripts/stage_gpu_bins.sh; the pinned upstream from scripts/fetch_upstream.sh, carried as
# .upstream/): `kpilot fidelity` of every named task (default: every task) against its pinned
# upstream release, then (unless FIDELITY_ONLY=1) each task's default candidate against its
# baseline. Specs of scripts/gpu_candidates.sh through scripts/gpu_lease.sh (KPILOT_GIT_COMMIT
# required); logs and ledgers in $OUT/results.tgz.
# Usage: scripts/gpu_fidelity.sh [TASK...]
set -u
cd "$(dirname "$0")/.." || exit 7
tasks=("$@")
if [ ${#tasks[@]} -eq 0 ]; then for d in tasks/*/task.toml; do tasks+=("$(basename "$(dirname "$d")")"); done; fi
specs=()
for t in "${tasks[@]}"; do specs+=("fidelity:$t"); done
if [ -z "${FIDELITY_ONLY:-}" ]; then specs+=("${tasks[@]}"); fi
LIMIT=${LIMIT:-5400} exec scripts/gpu_lease.sh "${specs[@]}"
