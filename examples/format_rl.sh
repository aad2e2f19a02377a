#!/usr/bin/env bash
# Does the trace format of the data a model sees before RL change RL's stability and length?
# (OctoThinker, arXiv 2506.20512, finds the mid-training format decides both.) At the micro
# scale: the same op 4-7 problems written as `full`, `terse` and `long` traces
# (datasets/format_micro.toml), SFT of the micro study's base model on each
# (examples/configs/format_sft.toml, equal token budgets), then GRPO on a held-out pool in the
# same format (examples/configs/format_rl.toml; the verifier reads the pool's format from its
# manifest). Prints, per format, the verified pass rate, answer rate, response length and
# entropy over the first and last 10 RL steps.
#
# Needs the micro study's base model: `bash examples/study.sh base` first.
# Environment: STUDY (default out/study), OUT (default out/format-rl), FORMATS (default
# "full terse long"), DAGMATH (a built binary; default: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-out/study}
OUT=${OUT:-out/format-rl}
FORMATS=${FORMATS:-full terse long}
BASE=$(ls -d "$STUDY"/base/pretrain/checkpoints/step-* 2>/dev/null | tail -1 || true)
if [ -z "$BASE" ]; then
  echo "no study base model under $STUDY/base/pretrain: run 'bash examples/study.sh base' first" >&2
  exit 2
fi
if [ -z "${DAGMATH:-}" ]; then
  cargo build --release
  DAGMATH=./target/release/dagmath
fi
D=$DAGMATH
for f in $FORMATS; do
  mkdir -p "$OUT/$f"
  for c in sft rl; do
    sed -e "s|out/format-rl/FORMAT/|$OUT/$f/|" "examples/configs/format_$c.toml" > "$OUT/$f/$c.toml"
  done
  $D generate --recipe datasets/format_micro.toml --trace-format "$f" --out "$OUT/$f/data" --force
  $D train sft --config "$OUT/$f/sft.toml" --from "$BASE" --force
  $D train rl --config "$OUT/$f/rl.toml" --from "$OUT/$f/sft" --force
done

python3 - "$OUT" $FORMATS <<'PY'
import json, sys
out, formats = sys.argv[1], sys.argv[2:]
print(f"{'format':<7} {'sft loss':>8}  {'pass first10':>12} {'last10':>6}  {'answer first10':>14} "
      f"{'last10':>6}  {'length first10':>14} {'last10':>6}  {'entropy first10':>15} {'last10':>6}")
for f in formats:
    sft = [json.loads(l) for l in open(f"{out}/{f}/sft/metrics.jsonl")]
    loss = [r["loss"] for r in sft if "loss" in r and "eval_loss" not in r][-1]
    rows = [json.loads(l) for l in open(f"{out}/{f}/rl/metrics.jsonl") if '"phase":"rl"' in l]
    k = min(10, len(rows))
    m = lambda key, part: sum(r[key] for r in part) / len(part)
    a, b = rows[:k], rows[-k:]
    print(f"{f:<7} {loss:>8.4f}  {m('pass_rate', a):>12.3f} {m('pass_rate', b):>6.3f}  "
          f"{m('answer_rate', a):>14.3f} {m('answer_rate', b):>6.3f}  "
          f"{m('response_length', a):>14.1f} {m('response_length', b):>6.1f}  "
          f"{m('entropy', a):>15.3f} {m('entropy', b):>6.3f}")
PY
