#!/usr/bin/env bash
# The CUDA checks, for a machine with an NVIDIA GPU (target: under 8 minutes). CI has no GPU and
# never runs this.
#
#   bash examples/gpu_check.sh          # build here with cargo (or use a pack, below), then check
#   bash examples/gpu_check.sh pack     # build the cuda binaries on a machine with cargo and pack
#                                       # them into .gpu_bin/gpu_bin.tar.xz (for GPU machines with
#                                       # no Rust toolchain or registry: carry that file there)
#
# What the check runs, in order, each step under its own time limit so one hang does not stop
# the rest:
#   1. the cuda build (cargo, or the binaries unpacked from .gpu_bin/gpu_bin.tar.xz);
#   2. the CUDA tests (tests/it/cuda.rs: forward, cached decoding and a training step on CUDA
#      against the CPU, f32 and bf16);
#   3. the `paper` preset's training tokens/s and MFU in bf16 (bench_train);
#   4. rollout tokens/s with the burn decoder on CUDA, `tiny` and `paper` (bench_rollout --cuda-only);
#   5. the loop on CUDA: quickstart data, pre-training (600k tokens), 2 GRPO steps, step times.
#
# Logs go to out/gpu_check/ (and are copied to $GPU_CHECK_LOG when set).
# CUDARC_CUDA_VERSION (pack only, default 13000) names the CUDA major/minor whose library names
# (libnvrtc.so.13, ...) the binaries look for; the driver's CUDA version is what nvidia-smi prints.
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=.gpu_bin/gpu_bin.tar.xz

if [ "${1:-}" = pack ]; then
    set -e
    export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
    cargo build --release --features cuda --bin dagmath --example bench_train --example bench_rollout
    it=$(cargo test --release --features cuda --test it --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\/it-[0-9a-f]*\)".*/\1/p' | tail -1)
    [ -x "$it" ] || { echo "gpu_check pack: no test binary found" >&2; exit 1; }
    rm -rf .gpu_bin/bin && mkdir -p .gpu_bin/bin
    cp target/release/dagmath target/release/examples/bench_train \
        target/release/examples/bench_rollout .gpu_bin/bin/
    cp "$it" .gpu_bin/bin/it
    strip .gpu_bin/bin/*
    tar -C .gpu_bin -cJf "$PACK" bin
    rm -rf .gpu_bin/bin
    ls -l "$PACK"
    exit 0
fi

OUT=out/gpu_check
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "[gpu_check +$(( $(date +%s) - t0 ))s] $*"; }
# step SECONDS NAME COMMAND...: run under a time limit, log to $OUT/NAME.txt, go on on failure.
step () {
    local limit=$1 name=$2 rc
    shift 2
    stamp "$name"
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    rc=$?
    [ $rc = 0 ] || echo "  $name: exit $rc$([ $rc = 124 ] && echo " (over ${limit}s)")"
    return 0
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || {
    echo "gpu_check: nvidia-smi failed: no GPU or driver here" >&2
    exit 2
}
# NVRTC: cudarc opens libnvrtc.so / libnvrtc.so.<major> by name; add the toolkit's folder when
# the loader does not already know it.
if ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; then
    lib=$(find /usr/local /opt /usr/lib -name 'libnvrtc.so*' 2>/dev/null | grep -v stub | head -1)
    [ -n "$lib" ] && export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "NVRTC: ${lib:-not found}"
fi

if [ -f "$PACK" ] && { ! command -v cargo > /dev/null || [ "${GPU_CHECK_PACKED:-}" = 1 ]; }; then
    stamp "binaries from $PACK"
    tar -C .gpu_bin -xJf "$PACK"
    BIN=.gpu_bin/bin
    D=$BIN/dagmath IT=$BIN/it BT=$BIN/bench_train BR=$BIN/bench_rollout
else
    stamp "build (release, --features cuda)"
    cargo build --release --features cuda --bin dagmath --example bench_train --example bench_rollout \
        2>&1 | tail -3
    D=./target/release/dagmath BT=./target/release/examples/bench_train
    BR=./target/release/examples/bench_rollout
    IT="cargo test --release --features cuda --test it --"
fi

# $IT is one path or a cargo command line.
# "cuda" matches the cuda module and every test named for CUDA (sft::the_masked_loss_on_cuda_…).
# shellcheck disable=SC2086
step 240 cuda_tests $IT cuda --test-threads 1 --nocapture
grep -E "^test |diff|loss|skipped|test result|panicked" "$OUT/cuda_tests.txt"

step 180 bench_train $BT --presets tiny --rounds 1 --steps 3
grep -E "cuda|MFU|skipped|rror" "$OUT/bench_train.txt"

step 180 bench_rollout $BR --cuda-only --new 256 --rounds 1
tail -6 "$OUT/bench_rollout.txt"

stamp "the loop on CUDA: generate, pre-train, 2 GRPO steps"
$D generate --recipe datasets/quickstart.toml --out "$OUT/data" --force > "$OUT/generate.txt" 2>&1
sed -e "s#^out = .*#out = \"$OUT/pretrain\"#" -e "s#^dir = .*#dir = \"$OUT/data\"#" \
    examples/configs/pretrain_quickstart.toml > "$OUT/pretrain.toml"
sed -e "s#^out = .*#out = \"$OUT/rl\"#" -e "s#^dir = .*#dir = \"$OUT/data\"#" -e "s#^steps = .*#steps = 2#" \
    -e "s#^every = .*#every = 2#" examples/configs/rl_quickstart.toml > "$OUT/rl.toml"
step 200 pretrain $D train pretrain --config "$OUT/pretrain.toml" --device cuda --force
tail -4 "$OUT/pretrain.txt"
step 200 rl $D train rl --config "$OUT/rl.toml" --from "$OUT/pretrain" --device cuda --force
tail -6 "$OUT/rl.txt"
grep -ho "\"rollout_tokens_per_s\":[0-9.]*,\"step_seconds\":[0-9.]*" "$OUT/rl/metrics.jsonl" 2>/dev/null
stamp "done"
if [ -n "${GPU_CHECK_LOG:-}" ]; then
    mkdir -p "$GPU_CHECK_LOG"
    cp "$OUT"/*.txt "$GPU_CHECK_LOG"/ 2>/dev/null
    cp "$OUT/rl/metrics.jsonl" "$GPU_CHECK_LOG/rl_metrics.jsonl" 2>/dev/null
fi
exit 0
