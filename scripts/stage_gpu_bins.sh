#!/usr/bin/env bash
# Build machine side of the GPU scripts (scripts/gpu_lease.sh and its wrappers): builds the release
# binary and the GPU test binary, and copies the latter into .gpu-bin/ (ignored by git) so both
# can be carried to a GPU machine without Rust. The test binary finds the checkout from its working
# directory (or KPILOT_REPO) and the kpilot binary at target/release/kpilot (or KPILOT_BIN), so it
# runs from wherever the tree was copied.
# A whole lease: scripts/pack_build_cache.py (the built libraries, so the GPU machine does not
# recompile them) and scripts/gpu_lease.sh (tests, then scripts/gpu_candidates.sh specs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
rm -rf .gpu-bin && mkdir -p .gpu-bin
cargo test --release --no-run --message-format=json --test gpu 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])' \
  | while read -r exe; do cp "$exe" .gpu-bin/gpu-tests; done
# XZ=1: carry less. The device tool carries the whole tracked tree (sealed ledger segments keep it near 20 MB: `kpilot ledger seal`) plus
# what is named, at most 64 MiB: this packs the kpilot binary (unstripped, so the ledger's
# kpilot_sha256 stays the build machine's) and the test binary into .gpu-bin/bins.tar.xz (about a
# third of their size) and removes the loose test binary; scripts/gpu_lease.sh unpacks it on the
# GPU machine (to target/release/kpilot and .gpu-bin/gpu-tests) and deletes the archive. Carry
# .gpu-bin then, not target/; without gpu_lease.sh, unpack it first: python3 -c 'import tarfile;
# tarfile.open(".gpu-bin/bins.tar.xz").extractall(".")'.
if [ "${XZ:-0}" = 1 ]; then
  python3 - <<'PY'
import tarfile
with tarfile.open(".gpu-bin/bins.tar.xz", "w:xz", preset=9) as t:
    t.add("target/release/kpilot", arcname="target/release/kpilot")
    t.add(".gpu-bin/gpu-tests", arcname=".gpu-bin/gpu-tests")
PY
  rm -f .gpu-bin/gpu-tests
  ls -la .gpu-bin
  exit 0
fi
ls -la .gpu-bin target/release/kpilot
