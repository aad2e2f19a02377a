# SCALE=micro: the study on this 2-core CPU with the `tiny` model (~1M parameters), on problems
# without distractors, pre-trained on op 2-6 for 44M tokens (~25 minutes here). The splits sit
# where that base model measurably stands (examples/study/micro/sweep.md, printed in the report's
# base section): ID op 3, edge op 4-6 (inside the pre-training range, not learned), hard op 7-8,
# for the paper's 2-10 / 11-14 / 15-20. Sourced by examples/study.sh.
SCALE_NOTE="micro (tiny model, CPU, no distractors, pre-trained on op 2-6): ID op 3, edge op 4-6, hard op 7-8 stand for the paper's 2-10 / 11-14 / 15-20; k = 32 stands for 128"
SCALE_DEVICE=cpu
RECIPE=datasets/study_micro.toml
PRESET=tiny SEQ=512 BATCH=16 LR=1e-2 MIN_LR=1e-3 CKPT_EVERY=244
BASE_TOKENS=44_000_000
# Evaluation: >= 100 problems per split (spread over its ops), 32 samples each.
SAMPLES=32 LIMIT=100 MAXNEW=320
# The edge pool: rl_pool problems (op 4-7, all 1,200) whose strict pass rate over 8 samples is
# in BAND.
SEL_SAMPLES=8 BAND=0.05-0.75 SEL_LIMIT=1200
RL_STEPS=100 PROMPTS=8 GROUP=8 MICRO=32 RL_LR=2e-4 RL_CKPT=25
# Context: school only at op 3 (the ID op) with this % of the data, in the base model's training continued
# for CTX_TOKENS (CTX_FROM=base; from scratch, 6M tokens learn nothing: micro/context.md).
CTX_SHARES="0 0.1 1 10" CTX_TOKENS=6_000_000 CTX_FROM=base
# Mid-training: β of one budget (FLOPs) to the 20/80 mixture, the rest to RL: 5e13 FLOPs is
# ~5.3M tokens of mid-training or ~580 RL steps (β = 0.8: 4.2M tokens then ~115 steps).
BETAS="0 0.2 0.5 0.8" MID_FLOPS=5e13 MID_TOKENS=12_000_000 MID_LR=1e-3 MID_MIN_LR=1e-4
# Reward: the arms start from the base model mid-trained for β = 0.8 of MID_FLOPS (4.24M tokens),
# the only model here with a hard split above 0 (from the base model every arm scores 0 there).
REWARD_MID_BETA=0.8
# `study.sh sweep` reruns points of the sweep: name preset tokens lr recipe.
SWEEP=(
  "d02-lr1e-2-16M tiny 16_000_000 1e-2 datasets/study_d02.toml"
  "none-lr1e-2-44M tiny 44_000_000 1e-2 datasets/study_micro.toml"
)
