#!/usr/bin/env bash
# The test command (README): installs what the tests need, checks formatting and lints, then
# runs the tests.
#  - nvcc: if none is found, the pinned CUDA 13.0 nvcc wheels from PyPI go into .tools/py, so the
#    tests compile every kernel of every task (compile only) on a machine without CUDA.
#  - libclang for bindgen: build.rs finds the system's or installs the pinned wheel itself.
# GPU tests are #[ignore]d here and run on a GPU machine with `-- --ignored` (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ -z "${KPILOT_NVCC:-}" ] && [ ! -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null 2>&1; then
  wheel_nvcc="$root/.tools/py/nvidia/cu13/bin/nvcc"
  if [ ! -x "$wheel_nvcc" ]; then
    echo "scripts/test.sh: no nvcc found; installing the pinned nvcc 13.0 wheels into .tools/py" >&2
    # All five pinned: pip otherwise mixes in newer parts that fail together.
    python3 -m pip install --quiet --disable-pip-version-check --target "$root/.tools/py" \
      nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
  fi
  export KPILOT_NVCC="$wheel_nvcc"
fi

# Lint and format first: both are part of the contract (issue 8), and fail fast.
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
  rustup component add clippy rustfmt
fi
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release "$@"
