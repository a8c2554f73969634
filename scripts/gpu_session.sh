#!/usr/bin/env bash
# One GPU-machine session in one command, for a GPU machine without Rust: the binaries are built
# elsewhere (`cargo build --release`, `cargo test --release --no-run`, then scripts/stage_gpu_bins.sh
# copies the test binaries into .gpu-bin/) and carried along with the repository.
#
#   scripts/gpu_session.sh tests   # GPU tests (--ignored), one binary after another
#   scripts/gpu_session.sh run     # the main job twice (the second with a warm build cache, timed)
#   scripts/gpu_session.sh ncu     # Nsight Compute digests of a few rows, both sides
#
# Results go to $OUT (or /tmp/kpilot-out): logs, the ledger, digests. Nothing on the card's
# settings is changed.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/kpilot-out}
mkdir -p "$out"
# Test binaries carry the build machine's absolute paths; make them resolve here.
if [ ! -e /work/main/Cargo.toml ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
export KPILOT_NVCC=${KPILOT_NVCC:-/usr/local/cuda/bin/nvcc}
export PATH=/usr/local/cuda/bin:$PATH
bin=target/release/kpilot

for step in "$@"; do
  case "$step" in
    info)
      { nvidia-smi; ldd --version | head -1; "$KPILOT_NVCC" --version | tail -2; } 2>&1 | tee "$out/machine.txt" ;;
    tests)
      for t in .gpu-bin/*; do
        echo "== $t" | tee -a "$out/gpu-tests.txt"
        "$t" --ignored --test-threads 1 2>&1 | tee -a "$out/gpu-tests.txt"
      done ;;
    run)
      for i in 1 2; do
        start=$(date +%s.%N)
        "$bin" task fuse_scale_shift 2>&1 | tee "$out/run-$i.txt"
        echo "exit ${PIPESTATUS[0]}; wall $(echo "$(date +%s.%N) - $start" | bc) s (run $i: $( [ $i = 1 ] && echo 'cold build cache' || echo 'warm build cache'))" | tee -a "$out/run-$i.txt"
      done
      cp ledger/fuse_scale_shift.jsonl "$out/" ;;
    ncu)
      metrics=$(grep -v '^#' ncu/metrics.txt | paste -sd, -)
      for r in ${NCU_ROWS:-wan-t2v_fss_S37800_C5120_scale1x1x5120.fp32_shiftfull.bf16}; do
        ncu --target-processes all --metrics "$metrics" --kernel-name regex:'^(?!kps_)' --launch-skip 0 --launch-count 4 \
            --csv --page raw "$bin" task fuse_scale_shift --row "$r" --trials 7 --json > "$out/ncu-$r.csv" 2> "$out/ncu-$r.log"
        echo "ncu $r: exit $?" | tee -a "$out/ncu.txt"
      done ;;
    *) ;;
  esac
done
ls -la "$out"
