#!/usr/bin/env bash
# The micro version of the paper's first experiment ("RL at the edge of competence"), on the
# CPU in about an hour: generate → pre-train the tiny model on op 2-6 → pick RL problems at its
# edge → GRPO on the edge vs on easy data (same budget) → evaluate base and both arms on ID
# (op 2-6), edge (op 7-8) and hard (op 9-10) → a table and plot of pass@1 and pass@k.
#
#   bash examples/micro.sh            # everything, into out/micro
#   SAMPLES=32 LIMIT=120 bash examples/micro.sh   # more samples / problems per split
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES=${SAMPLES:-16}       # samples per problem in eval (pass@k for k ≤ SAMPLES)
LIMIT=${LIMIT:-40}           # problems per split in eval
DEVICE=${DEVICE:-cpu}
cargo build --release ${FEATURES:+--features $FEATURES}
D=./target/release/dagmath
$D generate --recipe datasets/micro.toml --out out/micro --force
$D train pretrain --config examples/micro/pretrain.toml --device "$DEVICE" --force
eval_one () {  # eval_one NAME CHECKPOINT
  $D eval --checkpoint "$2" --data out/micro --splits test_id,ood_edge,ood_hard \
    --samples "$SAMPLES" --limit "$LIMIT" --temperature 0.7 --max-new-tokens 320 \
    --device "$DEVICE" --out "out/micro/eval-$1" --force
}
eval_one base out/micro/pretrain
# Edge of competence: pool problems the base model answers right sometimes but not always.
$D select --checkpoint out/micro/pretrain --pool out/micro --splits rl_pool --samples 8 \
  --band 0.1-0.7 --pass answer --limit 200 --max-new-tokens 320 --device "$DEVICE" \
  --out out/micro/edge --force
$D train rl --config examples/micro/rl_edge.toml --from out/micro/pretrain --device "$DEVICE" --force
$D train rl --config examples/micro/rl_easy.toml --from out/micro/pretrain --device "$DEVICE" --force
eval_one edge out/micro/rl-edge
eval_one easy out/micro/rl-easy
cargo run --release --example micro_report -- out/micro \
  base=out/micro/eval-base edge=out/micro/eval-edge easy=out/micro/eval-easy
