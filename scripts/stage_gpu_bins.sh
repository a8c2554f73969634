#!/usr/bin/env bash
# Build machine side of scripts/gpu_session.sh: builds the release binary and the GPU test
# binary, and copies the latter into .gpu-bin/ (ignored by git) so it can be carried.
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
