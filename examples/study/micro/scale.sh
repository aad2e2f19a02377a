# SCALE=micro: the study on this 2-core CPU with the `tiny` model (~1M parameters). The op scale
# is shifted to what the model reaches in ≤ 30 minutes of pre-training: ID op 2-6 (the paper's
# 2-10), edge op 7-8 (11-14), hard op 9-10 (15-20). Sourced by examples/study.sh.
SCALE_NOTE="micro (tiny model, CPU): ID op 2-6, edge op 7-8, hard op 9-10 stand for the paper's 2-10 / 11-14 / 15-20; k = 32 stands for 128"
SCALE_DEVICE=cpu
RECIPE=datasets/study.toml
PRESET=tiny SEQ=512 BATCH=16 LR=3e-3 MIN_LR=3e-4 CKPT_EVERY=244
BASE_TOKENS=16_000_000
# Evaluation: ≥ 100 problems per split (spread over its ops), 32 samples each.
SAMPLES=32 LIMIT=100 MAXNEW=320
# The edge pool: rl_pool problems (op 5-9) whose strict pass rate over 8 samples is in BAND.
SEL_SAMPLES=8 BAND=0.05-0.75 SEL_LIMIT=600
RL_STEPS=30 PROMPTS=8 GROUP=8 MICRO=32 RL_LR=2e-4 RL_CKPT=10
# Context: four pre-trainings (school only at op 2 with this % of the data).
CTX_SHARES="0 0.1 1 10" CTX_TOKENS=6_000_000
# Mid-training: β of one budget (FLOPs) to the 20/80 mixture, the rest to RL.
BETAS="0 0.2 0.5 0.8" MID_FLOPS=4e12 MID_TOKENS=12_000_000 MID_LR=1e-3 MID_MIN_LR=1e-4
# The sweep behind BASE_TOKENS and RECIPE: name preset tokens lr recipe.
SWEEP=(
  "tiny-ref-16M tiny 16_000_000 3e-3 datasets/study.toml"
  "tiny-d02-16M tiny 16_000_000 3e-3 datasets/study_d02.toml"
)
