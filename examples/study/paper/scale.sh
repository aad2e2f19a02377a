# SCALE=paper DEVICE=cuda: the paper's settings (SPEC §6): the `paper` preset (~100M parameters),
# 10B pre-training tokens on op 2-10, ID 2-10 / edge 11-14 / hard 15-20, 128 samples per problem,
# GRPO with 6 rollouts × 1024 prompts per step at lr 1e-6. Weeks of one GPU, not minutes.
SCALE_NOTE="paper (SPEC §6): ID op 2-10, edge op 11-14, hard op 15-20"
SCALE_DEVICE=cuda
RECIPE=datasets/study_paper.toml
PRESET=paper SEQ=2048 BATCH=256 LR=2e-4 MIN_LR=3e-5 CKPT_EVERY=1000
BASE_TOKENS=10_000_000_000
SAMPLES=128 LIMIT=600 MAXNEW=1024
SEL_SAMPLES=16 BAND=0.05-0.75 SEL_LIMIT=20000
RL_STEPS=200 PROMPTS=1024 GROUP=6 MICRO=256 RL_LR=1e-6 RL_CKPT=20
CTX_SHARES="0 0.1 1 10" CTX_TOKENS=2_000_000_000
BETAS="0 0.2 0.5 0.8" MID_FLOPS=2e20 MID_TOKENS=5_000_000_000 MID_LR=2e-4 MID_MIN_LR=3e-5
SWEEP=("paper-10B paper 10_000_000_000 2e-4 datasets/study_paper.toml")
