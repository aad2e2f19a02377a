#!/usr/bin/env bash
# DAPO at the micro scale: GRPO with clip-higher, token-level normalisation, no KL, dynamic
# sampling with oversampling (max_sampling_rounds) and the soft overlong punishment, from the
# micro study's base model on its edge pool. Needs `bash examples/study.sh base` first (the
# base model and the pool); prints the per-step sampling figures from metrics.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
D=./target/release/dagmath
BASE=$(ls -d out/study/base/pretrain/checkpoints/step-* 2>/dev/null | tail -1)
if [ -z "$BASE" ] || [ ! -f out/study/base/pool/manifest.json ]; then
  echo "no study base model or pool: run 'bash examples/study.sh base' first" >&2
  exit 2
fi
$D train rl --config examples/configs/dapo_micro.toml --from "$BASE" --force
python3 - <<'PY'
import json
rows = [json.loads(l) for l in open("out/dapo-micro/metrics.jsonl") if '"phase":"rl"' in l]
print("step reward pass answer sampled rounds dropped zero_var overlong length")
for m in rows:
    print(m["step"], f'{m["reward"]:.3f} {m["pass_rate"]:.3f} {m["answer_rate"]:.3f}',
          m["sampled_groups"], m["sampling_rounds"], m["dropped_groups"],
          f'{m["zero_variance_groups"]:.2f} {m["overlong_penalty"]:.3f} {m["response_length"]:.1f}')
PY
