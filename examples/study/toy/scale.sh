# SCALE=toy: every stage of the study at a size that runs in a minute or two (the test
# `study_toy_edge_pipeline_writes_the_report` runs it). Numbers mean nothing at this size.
SCALE_NOTE="toy (pipeline check only): ID op 2-3, edge op 4, hard op 5"
SCALE_DEVICE=cpu
RECIPE=datasets/study_toy.toml
PRESET=tiny SEQ=128 BATCH=4 LR=3e-3 MIN_LR=3e-4 CKPT_EVERY=20
BASE_TOKENS=12_000
SAMPLES=4 LIMIT=4 MAXNEW=40
SEL_SAMPLES=2 BAND=0-1 SEL_LIMIT=8
RL_STEPS=2 PROMPTS=2 GROUP=2 MICRO=4 RL_LR=2e-4 RL_CKPT=2
CTX_SHARES="0 10" CTX_TOKENS=6_000
BETAS="0 0.5" MID_FLOPS=2e9 MID_TOKENS=6_000 MID_LR=1e-3 MID_MIN_LR=1e-4
SWEEP=("toy-a tiny 6_000 3e-3 datasets/study_toy.toml")
