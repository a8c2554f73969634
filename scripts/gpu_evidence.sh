#!/usr/bin/env bash
# The evidence session on a GPU machine without Rust (binaries built elsewhere and carried, see
# scripts/stage_gpu_bins.sh): the main job twice (cold, then warm build cache, both timed), the
# other tasks, an A/A run of every task (the noise floor; each must fail the gate, exit 1), Nsight
# Compute digests of the largest fuse_scale_shift row, and the GPU tests. Fidelity to upstream has
# its own session script, scripts/gpu_fidelity.sh.
# Everything lands in $OUT/results.tgz (logs, ledgers, digests). The copy there has no .git: pass
# KPILOT_GIT_COMMIT (and KPILOT_GIT_DIRTY) so the ledger records which commit ran.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/kpilot-out}; res=/tmp/kpilot-res; rm -rf "$res"; mkdir -p "$out" "$res"
export KPILOT_NVCC=${KPILOT_NVCC:-/usr/local/cuda/bin/nvcc} PATH=/usr/local/cuda/bin:$PATH
b=target/release/kpilot
say() { echo "$*" | tee -a "$res/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv > "$res/machine.txt" 2>&1
say "card: $(sed -n 2p "$res/machine.txt")"
timed() { local name=$1; shift; local s; s=$(date +%s.%N); "$@" > "$res/$name.txt" 2>&1; local rc=$?; say "$name: exit $rc, wall $(python3 -c "import time;print(round(time.time()-$s,1))") s"; }
timed fss-cold-build "$b" task fuse_scale_shift
timed fss-warm-build "$b" task fuse_scale_shift
timed qknorm_rope "$b" task qknorm_rope
timed causal_conv3d_cat_pad "$b" task causal_conv3d_cat_pad
for t in fuse_scale_shift qknorm_rope causal_conv3d_cat_pad; do timed "aa-$t" "$b" task "$t" --aa; done
# An ncu record is kind "ncu": it explains times, it is no timing evidence.
timed ncu-wan-t2v timeout 180 "$b" ncu fuse_scale_shift --row wan-t2v_fss_S37800_C5120_scale1x1x5120.fp32_shiftfull.bf16
cp ledger/*.jsonl "$res/"
cp -r ncu "$res/"
timed gpu-tests timeout 300 .gpu-bin/gpu-tests --ignored --test-threads 1
tar czf "$out/results.tgz" -C "$res" .
cat "$res/summary.txt"; tail -22 "$res/fss-warm-build.txt"; grep -E "^test |test result" "$res/gpu-tests.txt"
