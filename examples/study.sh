#!/usr/bin/env bash
# The study of arXiv 2512.07783, one command per experiment:
#
#   bash examples/study.sh base       # data, the shared base model, its evaluation, the RL pool
#   bash examples/study.sh sweep      # the base-model sweep (preset, tokens, noise) behind `base`
#   bash examples/study.sh edge       # RL at the edge of competence vs on ID vs on too-hard data
#   bash examples/study.sh context    # context B seen only at the easiest op, 0 / 0.1 / 1 / 10%
#   bash examples/study.sh midtrain   # one compute budget split β between mid-training and RL
#   bash examples/study.sh reward     # outcome vs process-verified rewards
#   bash examples/study.sh all        # everything above, then the report
#   bash examples/study.sh report     # out/study/REPORT.md and its plots from what has run
#   bash examples/study.sh archive DEST   # the report, its plots and what it is made from
#                                     # (verdicts, RL metrics, experiment.toml, times.tsv): a few
#                                     # MB that `dagmath report --study DEST` rebuilds it from
#
# SCALE=micro (default: the `tiny` model on one CPU, op scale shifted: ID op 3, edge 4-6,
# hard 7-8, no distractors), SCALE=paper DEVICE=cuda (the paper's model and budgets, SPEC §6),
# SCALE=toy (minutes; what the test runs). Every stage is cached under $OUT/<experiment>/.done:
# a rerun skips what is done, and a killed training stage resumes from its latest checkpoint.
# Each experiment writes experiment.toml (arms, findings) and times.tsv (wall seconds per stage)
# for `dagmath report`.
#
# Environment: SCALE, DEVICE, OUT (default out/study), SEEDS (RL seeds, default "0 1"),
# DAGMATH (a built binary; default: cargo build --release and ./target/release/dagmath).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-micro}
S=examples/study
[ -f "$S/$SCALE/scale.sh" ] || { echo "SCALE=$SCALE: no $S/$SCALE/scale.sh" >&2; exit 2; }
# shellcheck source=/dev/null
source "$S/$SCALE/scale.sh"
DEVICE=${DEVICE:-$SCALE_DEVICE}
OUT=${OUT:-out/study}
SEEDS=${SEEDS:-0 1}
if [ -z "${DAGMATH:-}" ]; then
  features=""
  [ "$DEVICE" = cuda ] && features="--features cuda"
  # shellcheck disable=SC2086
  cargo build --release $features
  DAGMATH=./target/release/dagmath
fi
D=$DAGMATH
DATA=$OUT/data
BASE=$OUT/base/pretrain

# fill TEMPLATE DEST KEY=VALUE...: a config from a template's @KEY@ placeholders.
fill () {
  local t=$1 d=$2 s kv
  shift 2
  s=$(cat "$t")
  for kv in "$@"; do s=${s//@${kv%%=*}@/${kv#*=}}; done
  if grep -q '@[A-Z_]*@' <<<"$s"; then
    echo "fill $t: unfilled $(grep -o '@[A-Z_]*@' <<<"$s" | sort -u | tr '\n' ' ')" >&2
    exit 2
  fi
  mkdir -p "$(dirname "$d")"
  printf '%s\n' "$s" > "$d"
}

# stage EXPERIMENT NAME COMMAND...: run once; record its wall seconds in times.tsv.
stage () {
  local x=$1 n=$2 mark t0 t1
  shift 2
  mark=$OUT/$x/.done/$n
  if [ -e "$mark" ]; then echo "[$x] $n: done before"; return; fi
  echo "[$x] $n"
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  mkdir -p "$OUT/$x/.done"
  awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%s\t%.1f\n", n, b - a }' >> "$OUT/$x/times.tsv"
  touch "$mark"
}

# train PHASE CONFIG [ARGS...]: a training run, resumed when a killed one left checkpoints.
train () {
  local phase=$1 cfg=$2 out
  shift 2
  out=$(sed -n 's/^out = "\(.*\)"$/\1/p' "$cfg")
  if compgen -G "$out/checkpoints/step-*" > /dev/null; then
    "$D" train "$phase" --config "$cfg" --device "$DEVICE" --resume "$@"
  else
    "$D" train "$phase" --config "$cfg" --device "$DEVICE" --force "$@"
  fi
}

# evaluate CKPT OUTDIR DATA SPLITS: strict pass@k at T = 0.7.
evaluate () {
  "$D" eval --checkpoint "$1" --out "$2" --data "$3" --splits "$4" --samples "$SAMPLES" \
    --limit "$LIMIT" --temperature 0.7 --max-new-tokens "$MAXNEW" --device "$DEVICE" --force
}

# The [model] lines of a preset, "NAME" or "NAME:field=value,...", e.g.
# "tiny:hidden_size=192,num_hidden_layers=6,num_attention_heads=6".
model_lines () {
  local kv o=()
  printf 'preset = "%s"' "${1%%:*}"
  [[ $1 == *:* ]] || return 0
  IFS=, read -ra o <<<"${1#*:}"
  for kv in "${o[@]}"; do printf '\n%s = %s' "${kv%%=*}" "${kv#*=}"; done
}

pretrain_cfg () {  # pretrain_cfg DEST OUT DATA SPLIT TOKENS [PRESET [LR]]
  fill $S/pretrain.toml "$1" OUT="$2" DATA="$3" SPLIT="$4" TOKENS="$5" \
    MODEL="$(model_lines "${6:-$PRESET}")" \
    LR="${7:-$LR}" MIN_LR="$MIN_LR" DEVICE="$DEVICE" SEQ="$SEQ" BATCH="$BATCH" \
    CKPT_EVERY="$CKPT_EVERY"
}

# mid_cfg DEST OUT BETA: mid-training on the 20/80 mixture for share BETA of MID_FLOPS.
mid_cfg () {
  fill $S/midtrain.toml "$1" OUT="$2" DATA="$DATA" SEED=0 \
    DEVICE="$DEVICE" SEQ="$SEQ" BATCH="$BATCH" MID_TOKENS="$MID_TOKENS" MID_LR="$MID_LR" \
    MID_MIN_LR="$MID_MIN_LR" CKPT_EVERY="$CKPT_EVERY" FLOPS="$MID_FLOPS" BETA="$3"
}

rl_cfg () {  # rl_cfg DEST OUT DATA SPLIT SEED REWARD ALPHA [TEMPLATE FLOPS BETA]
  local t=$S/rl.toml extra=() steps=$RL_STEPS
  # Under a compute split the FLOP budget ends the run, not the step count: the cap is 10x the
  # fixed-step arms', so that every beta spends its whole (1 - beta) share.
  if [ $# -gt 7 ]; then t=$S/$8; extra=(FLOPS="$9" BETA="${10}"); steps=$((RL_STEPS * 10)); fi
  fill "$t" "$1" OUT="$2" DATA="$3" SPLIT="$4" SEED="$5" REWARD="$6" ALPHA="$7" \
    DEVICE="$DEVICE" STEPS="$steps" PROMPTS="$PROMPTS" GROUP="$GROUP" MICRO="$MICRO" \
    MAXNEW="$MAXNEW" RL_LR="$RL_LR" RL_CKPT="$RL_CKPT" "${extra[@]}"
}

# Arm lines of experiment.toml: arm NAME EVAL... (evals relative to the experiment folder).
arm () {
  local name=$1 e runs=()
  shift
  printf '\n[[arms]]\nname = "%s"\nevals = [' "$name"
  local first=1
  for e in "$@"; do
    [ $first = 1 ] || printf ', '
    first=0
    printf '"%s"' "$e"
    [[ $e == eval/rl-* ]] && runs+=("${e#eval/}")
  done
  printf ']\nruns = ['
  first=1
  for e in "${runs[@]+"${runs[@]}"}"; do
    [ $first = 1 ] || printf ', '
    first=0
    printf '"%s"' "$e"
  done
  printf ']\n'
}

seeded_arm () {  # seeded_arm NAME RUN: an arm over eval/RUN-s$seed for every seed
  local seed evals=()
  for seed in $SEEDS; do evals+=("eval/$2-s$seed"); done
  arm "$1" "${evals[@]}"
}

finding () {  # finding CLAIM PAPER SPLIT METRIC BETTER WORSE
  printf '\n[[findings]]\nclaim = "%s"\npaper = "%s"\nsplit = "%s"\nmetric = "%s"\nbetter = "%s"\nworse = "%s"\n' "$@"
}

header () {  # header NAME TITLE SPLITS [TEMPLATE]
  printf 'name = "%s"\ntitle = "%s"\nscale = "%s"\nk = %s\nsplits = [%s]\n' \
    "$1" "$2" "$SCALE_NOTE" "$SAMPLES" "$3"
  [ -z "${4:-}" ] || printf 'template = "%s"\n' "$4"
}

# notes FILE: FILE's markdown as the experiment's `notes` (printed under its heading), if it exists.
notes () {
  [ -f "$1" ] || return 0
  printf "notes = '''\n%s\n'''\n" "$(cat "$1")"
}

SPLITS3='"test_id", "ood_edge", "ood_hard"'

run_base () {
  stage base data "$D" generate --recipe "$RECIPE" --out "$DATA" --force
  pretrain_cfg "$OUT/base/pretrain.toml" "$BASE" "$DATA" train "$BASE_TOKENS"
  stage base pretrain train pretrain "$OUT/base/pretrain.toml"
  stage base eval evaluate "$BASE" "$OUT/base/eval/base" "$DATA" test_id,ood_edge,ood_hard
  # The edge of competence: pool problems the base model solves sometimes but not always.
  stage base select "$D" select --checkpoint "$BASE" --pool "$DATA" --splits rl_pool \
    --samples "$SEL_SAMPLES" --band "$BAND" --pass verified --limit "$SEL_LIMIT" \
    --max-new-tokens "$MAXNEW" --device "$DEVICE" --out "$OUT/base/pool" --force
  {
    header base "The shared base model" "$SPLITS3"
    notes "$S/$SCALE/sweep.md"
    arm base eval/base
  } > "$OUT/base/experiment.toml"
}

run_sweep () {
  local x=$OUT/sweep point name preset tokens lr recipe data
  mkdir -p "$x"
  header sweep "Base-model sweep (each point on its own family's test splits)" "$SPLITS3" > "$x/experiment.toml.new"
  for point in "${SWEEP[@]}"; do
    read -r name preset tokens lr recipe <<<"$point"
    data=$x/data-$(basename "$recipe" .toml)
    stage sweep "data-$(basename "$recipe" .toml)" "$D" generate --recipe "$recipe" --out "$data" --force
    pretrain_cfg "$x/$name.toml" "$x/$name" "$data" train "$tokens" "$preset" "$lr"
    stage sweep "pretrain-$name" train pretrain "$x/$name.toml"
    stage sweep "eval-$name" evaluate "$x/$name" "$x/eval/$name" "$data" test_id,ood_edge,ood_hard
    arm "$name" "eval/$name" >> "$x/experiment.toml.new"
  done
  mv "$x/experiment.toml.new" "$x/experiment.toml"
}

run_edge () {
  local x=$OUT/edge a seed
  run_base
  mkdir -p "$x"
  for a in edge id hard; do
    for seed in $SEEDS; do
      case $a in
        edge) rl_cfg "$x/rl-$a-s$seed.toml" "$x/rl-$a-s$seed" "$OUT/base/pool" rl_pool "$seed" mixed 0.2 ;;
        id) rl_cfg "$x/rl-$a-s$seed.toml" "$x/rl-$a-s$seed" "$DATA" rl_id "$seed" mixed 0.2 ;;
        hard) rl_cfg "$x/rl-$a-s$seed.toml" "$x/rl-$a-s$seed" "$DATA" rl_hard "$seed" mixed 0.2 ;;
      esac
      stage edge "rl-$a-s$seed" train rl "$x/rl-$a-s$seed.toml" --from "$BASE"
      stage edge "eval-$a-s$seed" evaluate "$x/rl-$a-s$seed" "$x/eval/rl-$a-s$seed" "$DATA" test_id,ood_edge,ood_hard
    done
  done
  {
    header edge "RL at the edge of competence" "$SPLITS3"
    notes "$S/$SCALE/edge.md"
    arm base ../base/eval/base
    for a in edge id hard; do
      seeded_arm "rl-$a" "rl-$a"
    done
    finding "RL on edge problems beats RL on ID problems on the edge split" \
      "edge pass@128 86 (edge RL) vs 43 (ID RL)" ood_edge pass@k rl-edge rl-id
    finding "RL on edge problems beats RL on too-hard problems on the edge split" \
      "edge pass@128 86 (edge RL) vs 40 (hard RL)" ood_edge pass@k rl-edge rl-hard
    finding "RL on edge problems raises the edge split's pass@k over the base model" \
      "edge pass@128 44 (base) → 86" ood_edge pass@k rl-edge base
    finding "RL on edge problems raises the edge split's pass@1 over the base model" \
      "edge pass@1 17 (base) → 51" ood_edge pass@1 rl-edge base
  } > "$x/experiment.toml"
}

run_context () {
  local x=$OUT/context p seed from=${CTX_FROM:-scratch}
  stage base data "$D" generate --recipe "$RECIPE" --out "$DATA" --force
  mkdir -p "$x"
  # CTX_FROM=scratch: four pre-trainings, as the paper; CTX_FROM=base: the shared base model's
  # training continued on each exposure split (examples/study/continue.toml), where four
  # pre-trainings from scratch cannot learn the task inside the experiment's hour.
  [ "$from" = base ] && run_base
  for p in $CTX_SHARES; do
    if [ "$from" = base ]; then
      fill $S/continue.toml "$x/pre-$p.toml" OUT="$x/pre-$p" DATA="$DATA" SPLIT="ctx_${p/./p}" \
        TOKENS="$CTX_TOKENS" LR="$MID_LR" MIN_LR="$MID_MIN_LR" DEVICE="$DEVICE" SEQ="$SEQ" \
        BATCH="$BATCH" CKPT_EVERY="$CKPT_EVERY"
      stage context "pretrain-$p" train midtrain "$x/pre-$p.toml" --from "$BASE"
    else
      pretrain_cfg "$x/pre-$p.toml" "$x/pre-$p" "$DATA" "ctx_${p/./p}" "$CTX_TOKENS"
      stage context "pretrain-$p" train pretrain "$x/pre-$p.toml"
    fi
    # What exposure alone gave, before RL.
    stage context "eval-pre-$p" evaluate "$x/pre-$p" "$x/eval/pre-$p" "$DATA" test_school,test_zoo
    for seed in $SEEDS; do
      rl_cfg "$x/rl-$p-s$seed.toml" "$x/rl-$p-s$seed" "$DATA" rl_ctx "$seed" mixed 0.2
      stage context "rl-$p-s$seed" train rl "$x/rl-$p-s$seed.toml" --from "$x/pre-$p"
      stage context "eval-$p-s$seed" evaluate "$x/rl-$p-s$seed" "$x/eval/rl-$p-s$seed" "$DATA" test_school,test_zoo
    done
  done
  {
    header context "Context B (school) seen only at the easiest op, then RL on a 50/50 A:B edge pool" '"test_school", "test_zoo"'
    notes "$S/$SCALE/context.md"
    for p in $CTX_SHARES; do
      seeded_arm "school-$p" "rl-$p"
    done
    for p in $CTX_SHARES; do
      arm "exposure-$p" "eval/pre-$p"
    done
    finding "1% exposure to context B transfers where 0.1% collapses" \
      "0.1% collapses past op 3; 1% keeps pass@128 61 at op 20" test_school pass@k school-1 school-0.1
    finding "10% exposure beats none on context B" \
      "10%: pass@128 67 at op 20" test_school pass@k school-10 school-0
  } > "$x/experiment.toml"
}

run_midtrain () {
  local x=$OUT/midtrain b seed from
  run_base
  mkdir -p "$x"
  for b in $BETAS; do
    from=$BASE
    if [ "$b" != 0 ]; then
      mid_cfg "$x/mid-b$b.toml" "$x/mid-b$b" "$b"
      stage midtrain "mid-b$b" train midtrain "$x/mid-b$b.toml" --from "$BASE"
      from=$x/mid-b$b
    fi
    for seed in $SEEDS; do
      rl_cfg "$x/rl-b$b-s$seed.toml" "$x/rl-b$b-s$seed" "$OUT/base/pool" rl_pool "$seed" mixed 0.2 \
        rl_compute.toml "$MID_FLOPS" "$b"
      stage midtrain "rl-b$b-s$seed" train rl "$x/rl-b$b-s$seed.toml" --from "$from"
      stage midtrain "eval-b$b-s$seed" evaluate "$x/rl-b$b-s$seed" "$x/eval/rl-b$b-s$seed" "$DATA" test_id,ood_edge,ood_hard
    done
  done
  {
    header midtrain "One compute budget split β between mid-training and RL" "$SPLITS3"
    notes "$S/$SCALE/midtrain.md"
    for b in $BETAS; do
      seeded_arm "beta-$b" "rl-b$b"
    done
    finding "Mid-training + RL (β = 0.5) beats full RL (β = 0) on the hard split" \
      "OOD-hard pass@128 +10.8 points" ood_hard pass@k beta-0.5 beta-0
    finding "Mid-training + RL (β = 0.2) beats full RL (β = 0) on the hard split" \
      "Heavy-RL β = 0.2 above full RL" ood_hard pass@k beta-0.2 beta-0
    finding "Mostly mid-training (β = 0.8) beats full RL (β = 0) on the hard split" \
      "Light-RL (mostly mid-training) above full RL" ood_hard pass@k beta-0.8 beta-0
    # The same comparisons on the edge split, for scales whose hard split is 0 for every arm.
    finding "Mid-training + RL (β = 0.5) beats full RL (β = 0) on the edge split" \
      "(paper: on OOD-hard) pass@128 +10.8 points" ood_edge pass@k beta-0.5 beta-0
    finding "Mid-training + RL (β = 0.2) beats full RL (β = 0) on the edge split" \
      "(paper: on OOD-hard) Heavy-RL above full RL" ood_edge pass@k beta-0.2 beta-0
  } > "$x/experiment.toml"
}

run_reward () {
  local x=$OUT/reward a seed kind alpha from=$BASE
  run_base
  mkdir -p "$x"
  # REWARD_MID_BETA (a scale's choice): the arms start from the base model mid-trained for that
  # share of MID_FLOPS, as the midtrain experiment's arm of the same β is, so that the hard
  # split is above 0 before RL; "start" is that model's own evaluation.
  if [ -n "${REWARD_MID_BETA:-}" ]; then
    mid_cfg "$x/mid.toml" "$x/mid" "$REWARD_MID_BETA"
    stage reward mid train midtrain "$x/mid.toml" --from "$BASE"
    stage reward eval-start evaluate "$x/mid" "$x/eval/start" "$DATA" test_id,ood_edge,ood_hard
    from=$x/mid
  fi
  for a in outcome mixed-0.2 mixed-0.5 strict; do
    case $a in
      outcome) kind=outcome alpha=0.2 ;;
      mixed-0.2) kind=mixed alpha=0.2 ;;
      mixed-0.5) kind=mixed alpha=0.5 ;;
      strict) kind=strict alpha=0.2 ;;
    esac
    for seed in $SEEDS; do
      rl_cfg "$x/rl-$a-s$seed.toml" "$x/rl-$a-s$seed" "$OUT/base/pool" rl_pool "$seed" "$kind" "$alpha"
      stage reward "rl-$a-s$seed" train rl "$x/rl-$a-s$seed.toml" --from "$from"
      stage reward "eval-$a-s$seed" evaluate "$x/rl-$a-s$seed" "$x/eval/rl-$a-s$seed" "$DATA" test_id,ood_edge,ood_hard
    done
  done
  {
    header reward "Outcome vs process-verified rewards (0.2·outcome + 0.8·process, 0.5/0.5, strict)" "$SPLITS3"
    notes "$S/$SCALE/reward.md"
    [ -z "${REWARD_MID_BETA:-}" ] || arm start eval/start
    for a in outcome mixed-0.2 mixed-0.5 strict; do
      seeded_arm "$a" "rl-$a"
    done
    finding "0.2·outcome + 0.8·process beats outcome-only on the hard split" \
      "OOD-hard pass@128 23.2 → 27.7" ood_hard pass@k mixed-0.2 outcome
    finding "0.5/0.5 beats outcome-only on the hard split" \
      "OOD-hard pass@128 23.2 → 26.2" ood_hard pass@k mixed-0.5 outcome
    finding "strict beats outcome-only on the hard split" \
      "OOD-hard pass@128 23.2 → 25.8" ood_hard pass@k strict outcome
    # Where the base model's hard split is all zeros (the micro scale), the hard-split findings
    # have no signal; the same comparisons on the edge split are where RL can move anything.
    finding "0.2·outcome + 0.8·process beats outcome-only on the edge split" \
      "(paper: on OOD-hard) pass@128 23.2 → 27.7" ood_edge pass@k mixed-0.2 outcome
    finding "strict beats outcome-only on the edge split" \
      "(paper: on OOD-hard) pass@128 23.2 → 25.8" ood_edge pass@k strict outcome
    finding "process rewards cut reward hacking (right answer, wrong trace) on the edge split" \
      "process supervision curbs hacking" ood_edge hacking mixed-0.2 outcome
  } > "$x/experiment.toml"
}

report () { "$D" report --study "$OUT"; }

# archive DEST: copy what the report is made from and what it wrote, nothing else (no models,
# no samples, no data), keeping the folder layout so `dagmath report --study DEST` works there.
archive () {
  local dest=${1:-}
  [ -n "$dest" ] || { echo "archive: name a destination folder" >&2; exit 2; }
  [ -f "$OUT/REPORT.md" ] || { echo "archive: no $OUT/REPORT.md (run an experiment first)" >&2; exit 2; }
  mkdir -p "$dest"
  dest=$(cd "$dest" && pwd)
  (
    cd "$OUT"
    find . -maxdepth 1 \( -name REPORT.md -o -name '*.svg' \) -print0
    find . -mindepth 2 -maxdepth 2 \( -name experiment.toml -o -name times.tsv \) -print0
    find . -mindepth 4 -maxdepth 4 -path './*/eval/*/verdicts.parquet' -print0
    find . -mindepth 3 -maxdepth 3 -path './*/rl-*/metrics.jsonl' -print0
  ) | (cd "$OUT" && xargs -0 cp --parents -t "$dest")
  echo "archived $(find "$dest" -type f | wc -l) files ($(du -sh "$dest" | cut -f1)) in $dest"
}

case "${1:-}" in
  base) run_base; report ;;
  sweep) run_sweep; report ;;
  edge) run_edge; report ;;
  context) run_context; report ;;
  midtrain) run_midtrain; report ;;
  reward) run_reward; report ;;
  all) run_base; run_edge; run_context; run_midtrain; run_reward; report ;;
  report) report ;;
  archive) archive "${2:-}" ;;
  *) sed -n '2,24p' "$0"; exit 2 ;;
esac
