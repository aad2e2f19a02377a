#!/usr/bin/env bash
# Stable-then-Decay with data branches (OctoThinker's recipe) on the quickstart data: a stable
# run at a constant learning rate, then two decay branches forked from its last checkpoint,
# each on its own mixture (op 2-5 / op 6-10), each decaying to min_lr. Every branch's
# metrics.jsonl and curve.svg carry the stable phase and its own, with per-phase compute, so
# branches compare at equal FLOPs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
D=./target/release/dagmath
[ -f out/quickstart/manifest.json ] || $D generate --recipe datasets/quickstart.toml --out out/quickstart
$D train pretrain --config examples/configs/wsd_stable.toml --force
for b in easy hard; do
  $D train midtrain --config "examples/configs/wsd_branch_$b.toml" --from out/wsd-stable --force
done
