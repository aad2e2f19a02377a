#!/usr/bin/env bash
# SFT then GRPO at the micro scale (the "supervised priming" of small-model RL recipes): from
# the micro study's base model, supervised fine-tuning on the gold traces of op 4-7 (the RL
# pool's ops) with the loss on the completion only (examples/configs/sft_micro.toml), then
# GRPO from the SFT checkpoint and, for comparison, GRPO from the base model with the same RL
# config (examples/configs/sft_grpo_rl.toml, the study's edge arm). Prints the verified pass
# rate and the answer rate at the first and last RL steps of each run.
#
# Needs `bash examples/study.sh base` first: the micro dataset (out/study/data), the base model
# (out/study/base/pretrain) and its edge pool (out/study/base/pool).
#
# Environment: STUDY (the study's folder, default out/study), OUT (default out/sft-grpo),
# DAGMATH (a built binary; default: cargo build --release and ./target/release/dagmath), TOY=1
# (a pipeline check in a minute: budgets cut to a few steps, numbers mean nothing; e.g. on a
# toy study: SCALE=toy OUT=/tmp/toy bash examples/study.sh base, then STUDY=/tmp/toy TOY=1).
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-out/study}
OUT=${OUT:-out/sft-grpo}
BASE=$(ls -d "$STUDY"/base/pretrain/checkpoints/step-* 2>/dev/null | tail -1 || true)
for need in "$STUDY/data/manifest.json" "$STUDY/base/pool/manifest.json" "$BASE"; do
  if [ -z "$need" ] || [ ! -e "$need" ]; then
    echo "no study base model, pool or data under $STUDY: run 'bash examples/study.sh base' first" >&2
    exit 2
  fi
done
if [ -z "${DAGMATH:-}" ]; then
  cargo build --release
  DAGMATH=./target/release/dagmath
fi
D=$DAGMATH
mkdir -p "$OUT"

# cfg SRC DEST [SED-ARGS...]: SRC with its paths under $STUDY and $OUT (toy sizes with TOY=1).
cfg () {
  local src=$1 dest=$2 toy=()
  shift 2
  if [ "${TOY:-0}" = 1 ]; then
    toy=(-e 's/^tokens = .*/tokens = 4_096/' -e 's/^seq_len = .*/seq_len = 128/'
         -e 's/^batch_size = .*/batch_size = 4/' -e 's/^every = .*/every = 4/'
         -e 's/^steps = .*/steps = 2/' -e 's/^prompts_per_step = .*/prompts_per_step = 2/'
         -e 's/^group_size = .*/group_size = 2/' -e 's/^max_new_tokens = .*/max_new_tokens = 32/')
  fi
  sed -e "s|\"out/study/|\"$STUDY/|" -e "s|\"out/sft-grpo/|\"$OUT/|" ${toy[@]+"${toy[@]}"} "$@" \
    "$src" > "$dest"
}
cfg examples/configs/sft_micro.toml "$OUT/sft.toml"
cfg examples/configs/sft_grpo_rl.toml "$OUT/rl-sft.toml"
cfg examples/configs/sft_grpo_rl.toml "$OUT/rl-base.toml" -e "s|^out = .*|out = \"$OUT/rl-base\"|"

$D train sft --config "$OUT/sft.toml" --from "$BASE" --force
$D train rl --config "$OUT/rl-sft.toml" --from "$OUT/sft" --force
$D train rl --config "$OUT/rl-base.toml" --from "$BASE" --force

# Each step sees prompts_per_step × group_size rollouts, so one step's rates are noisy: the
# table gives the mean over the first and the last 10 steps (fewer when the run is shorter).
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
print(f"{'GRPO from':<10} {'steps':>5}  {'pass first10':>12} {'pass last10':>11}  "
      f"{'answer first10':>14} {'answer last10':>13}  {'length first10':>15} {'last10':>6}")
for run, name in (("rl-sft", "SFT"), ("rl-base", "base")):
    rows = [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl") if '"phase":"rl"' in l]
    k = min(10, len(rows))
    m = lambda key, part: sum(r[key] for r in part) / len(part)
    a, b = rows[:k], rows[-k:]
    print(f"{name:<10} {len(rows):>5}  {m('pass_rate', a):>12.3f} {m('pass_rate', b):>11.3f}  "
          f"{m('answer_rate', a):>14.3f} {m('answer_rate', b):>13.3f}  "
          f"{m('response_length', a):>15.1f} {m('response_length', b):>6.1f}")
PY
