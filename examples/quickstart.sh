#!/usr/bin/env bash
# The whole loop on the CPU in minutes: generate a dataset → pre-train the tiny model →
# a few GRPO steps with verifier rewards → evaluate pass@k. Outputs go under out/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
D=./target/release/dagmath
$D generate --recipe datasets/quickstart.toml --out out/quickstart --force
$D train pretrain --config examples/configs/pretrain_quickstart.toml --force
$D train rl --config examples/configs/rl_quickstart.toml --from out/pretrain-quickstart --force
$D eval --checkpoint out/rl-quickstart --data out/quickstart --splits test_id,ood_edge \
  --limit 20 --samples 4 --max-new-tokens 320 --out out/eval-quickstart --force
