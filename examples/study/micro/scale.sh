# SCALE=micro: the study on this 2-core CPU with the `tiny` model (~1M parameters). The op scale
# is shifted to what the model reaches in <= 30 minutes of pre-training: pre-training op 2-6 and
# ID test op 3-6 (the paper's 2-10), edge op 7-8 (11-14), hard op 9-10 (15-20), and problems
# state no distractors. Sourced by examples/study.sh.
SCALE_NOTE="micro (tiny model, CPU, no distractors): pre-training op 2-6, ID test op 3-6, edge op 7-8, hard op 9-10 stand for the paper's 2-10 / 11-14 / 15-20; k = 32 stands for 128"
SCALE_DEVICE=cpu
# The sweep behind these choices is examples/study/micro/sweep.md (printed in the report's base
# section): at lr 3e-3 no trace binds its letters; at lr 1e-2 with 0-2 distractors per problem
# the best 30-minute point reaches ID pass@1 ~20%; without distractors the same budget learns the
# task (datasets/study_micro.toml).
RECIPE=datasets/study_micro.toml
PRESET=tiny SEQ=512 BATCH=16 LR=1e-2 MIN_LR=1e-3 CKPT_EVERY=244
BASE_TOKENS=44_000_000
# Evaluation: >= 100 problems per split (spread over its ops), 32 samples each.
SAMPLES=32 LIMIT=100 MAXNEW=320
# The edge pool: rl_pool problems (op 6-9) whose strict pass rate over 8 samples is in BAND.
SEL_SAMPLES=8 BAND=0.05-0.75 SEL_LIMIT=600
RL_STEPS=30 PROMPTS=8 GROUP=8 MICRO=32 RL_LR=2e-4 RL_CKPT=10
# Context: four pre-trainings (school only at op 2 with this % of the data).
CTX_SHARES="0 0.1 1 10" CTX_TOKENS=6_000_000
# Mid-training: β of one budget (FLOPs) to the 20/80 mixture, the rest to RL.
BETAS="0 0.2 0.5 0.8" MID_FLOPS=4e12 MID_TOKENS=12_000_000 MID_LR=1e-3 MID_MIN_LR=1e-4
# `study.sh sweep` reruns points of the sweep: name preset tokens lr recipe.
SWEEP=(
  "d02-lr1e-2-16M tiny 16_000_000 1e-2 datasets/study_d02.toml"
  "none-lr1e-2-44M tiny 44_000_000 1e-2 datasets/study_micro.toml"
)
