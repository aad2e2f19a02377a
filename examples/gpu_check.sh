#!/usr/bin/env bash
# The CUDA checks, for a machine with an NVIDIA GPU, from a clean clone (target: under 8 minutes).
# CI has no GPU and never runs this.
#
# What it runs, in order:
#   1. build with `--features cuda`;
#   2. the engine and training tests on that build;
#   3. the `paper` preset's training tokens/s and MFU (bench_train);
#   4. rollout tokens/s with the burn decoder on CUDA (bench_rollout --cuda-only);
#   5. a GRPO step on CUDA: quickstart data, 40 pre-training steps, 2 RL steps, step times.
#
#   bash examples/gpu_check.sh            # logs go to out/gpu_check/
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=out/gpu_check
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "[gpu_check +$(( $(date +%s) - t0 ))s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || {
    echo "gpu_check: nvidia-smi failed: no GPU or driver here" >&2
    exit 2
}
stamp "build (release, --features cuda)"
cargo build --release --features cuda --bin dagmath --example bench_train --example bench_rollout \
    2>&1 | tail -3

stamp "tests: engine and training on the cuda build"
cargo test --release --features cuda --test it -- engine train 2>&1 | grep -E "^test result|FAILED|panicked" || true

stamp "paper preset: training tokens/s and MFU"
./target/release/examples/bench_train --presets tiny --rounds 1 --steps 3 2>&1 | tee "$OUT/bench_train.txt" | grep -E "cuda|MFU|skipped" || true

stamp "rollouts with the burn decoder on CUDA"
./target/release/examples/bench_rollout --cuda-only --new 256 2>&1 | tee "$OUT/bench_rollout.txt" | tail -8 || true

stamp "one GRPO step on CUDA"
D=./target/release/dagmath
$D generate --recipe datasets/quickstart.toml --out "$OUT/data" --force > "$OUT/generate.txt"
sed -e "s#^out = .*#out = \"$OUT/pretrain\"#" -e "s#^dir = .*#dir = \"$OUT/data\"#" \
    examples/configs/pretrain_quickstart.toml > "$OUT/pretrain.toml"
sed -e "s#^out = .*#out = \"$OUT/rl\"#" -e "s#^dir = .*#dir = \"$OUT/data\"#" -e "s#^steps = .*#steps = 2#" \
    -e "s#^every = .*#every = 2#" examples/configs/rl_quickstart.toml > "$OUT/rl.toml"
$D train pretrain --config "$OUT/pretrain.toml" --device cuda --force 2>&1 | tail -4 | tee "$OUT/pretrain.txt"
$D train rl --config "$OUT/rl.toml" --from "$OUT/pretrain" --device cuda --force 2>&1 | tail -6 | tee "$OUT/rl.txt"
grep -ho "\"rollout_tokens_per_s\":[0-9.]*,\"step_seconds\":[0-9.]*" "$OUT/rl/metrics.jsonl" || true
stamp "done"
