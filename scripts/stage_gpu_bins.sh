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
ls -la .gpu-bin target/release/kpilot
