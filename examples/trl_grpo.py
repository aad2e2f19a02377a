"""GRPO with TRL on a dagmath RL pool, dagmath's verifier as the reward; then the rewards TRL
logged are checked against `dagmath audit`'s for the same completions.

    python examples/trl_grpo.py --checkpoint out/pretrain-quickstart --out out/trl-grpo

Needs `pip install . trl` (and torch). Steps:
1. export the dagmath checkpoint to a Hugging Face folder (`dagmath export`), unless --model
   names one already;
2. generate a small RL pool with `dagmath.generate` (ops 2-4, forward and reverse);
3. train a few GRPO steps on the CPU with `dagmath.integrations.trl.reward`, recording every
   completion TRL scored and the reward it logged;
4. write those completions as predictions JSONL, run `dagmath audit` on them, and compare the
   audit's `reward_mixed` with TRL's reward, completion by completion.
Exit status 1 if any reward differs.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagmath
from dagmath.integrations import trl as dagmath_trl

POOL = """
name = "trl-pool"
seed = 11
shard_size = 1000

[[splits]]
name = "train"
size = 64
ops = "2-4"
templates = { zoo = 1.0 }
modes = { forward = 0.5, reverse = 0.5 }
"""


def find_cli(given):
    root = Path(__file__).resolve().parents[1]
    for c in [given, os.environ.get("DAGMATH_BIN"), root / "target/release/dagmath", root / "target/debug/dagmath", shutil.which("dagmath")]:
        if c and Path(c).is_file():
            return str(c)
    sys.exit("no dagmath binary: pass --dagmath, set DAGMATH_BIN or run cargo build")


def keep_tags(src, dst):
    """A copy of the Hugging Face folder whose tag tokens (`<solution>`, `<answer>`, ...) are
    not marked special: TRL decodes completions with `skip_special_tokens=True`, which would
    drop `<answer> N </answer>` and leave the verifier no answer to read. Tokenizers dagmath
    writes now mark only [PAD], [EOS] and [UNK] special, so this changes nothing for them; it
    serves checkpoints written before that (their tokenizer.json travels with them)."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    tj = dst / "tokenizer.json"
    t = json.loads(tj.read_text())
    for a in t.get("added_tokens", []):
        if a["content"].startswith("<"):
            a["special"] = False
    tj.write_text(json.dumps(t))
    return str(dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="out/pretrain-quickstart", help="dagmath checkpoint or run folder to export")
    ap.add_argument("--model", help="a Hugging Face folder to train instead (skips the export)")
    ap.add_argument("--out", default="out/trl-grpo", help="work folder")
    ap.add_argument("--dagmath", help="the dagmath CLI binary")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--generations", type=int, default=4, help="completions per prompt")
    ap.add_argument("--max-completion-length", type=int, default=160)
    ap.add_argument("--temperature", type=float, default=0.7)
    args = ap.parse_args()

    import pyarrow.parquet as pq
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cli = find_cli(args.dagmath)
    model_dir = args.model
    if model_dir is None:
        model_dir = str(out / "hf")
        subprocess.run([cli, "export", "--checkpoint", args.checkpoint, "--out", model_dir, "--force"], check=True)
    model_dir = keep_tags(Path(model_dir), out / "hf-trl")

    pool = out / "pool"
    (out / "pool.toml").write_text(POOL)
    dagmath.generate(str(out / "pool.toml"), str(pool), force=True)
    rows = []
    for f in sorted((pool / "data").glob("train-*.parquet")):
        rows.extend(pq.read_table(f).to_pylist())
    train = Dataset.from_list([{"prompt": r["prompt"], "graph": r["graph"], "id": r["id"]} for r in rows])
    print(f"pool: {len(rows)} problems from {pool}")

    # Every call TRL makes: the ids, completions and the rewards returned (= logged).
    scored = []

    def reward(prompts, completions, graph, id, **kw):
        r = dagmath_trl.reward(prompts, completions, graph, id=id, **kw)
        scored.append((list(id), list(completions), list(r)))
        return r

    reward.__name__ = "dagmath_mixed"

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = GRPOConfig(
        output_dir=str(out / "trl"),
        max_steps=args.steps,
        per_device_train_batch_size=args.generations * 2,
        num_generations=args.generations,
        max_completion_length=args.max_completion_length,
        learning_rate=1e-5,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        temperature=args.temperature,
        seed=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=train, processing_class=tok)
    started = time.time()
    trainer.train()
    print(f"trained {args.steps} GRPO steps in {time.time() - started:.1f}s on the CPU")
    for h in trainer.state.log_history:
        if "rewards/dagmath_mixed/mean" in h:
            print(f"  step {h.get('step')}: reward mean {h['rewards/dagmath_mixed/mean']:.4f}  loss {h.get('loss', float('nan')):.4f}")

    # TRL's own completions log (its last generation batches, rewards held as float32): each
    # logged completion must be one we recorded, with its reward to float32 rounding.
    logs = getattr(trainer, "_logs", None)
    logged = []
    if logs is not None and logs.get("completion"):
        logged = list(zip(logs["completion"], logs["rewards"]["dagmath_mixed"]))
        recorded = {c: r for _, cs, rs in scored for c, r in zip(cs, rs)}
        for c, r in logged:
            assert c in recorded, f"TRL logged a completion no reward call saw: {c[:80]!r}"
            assert abs(float(r) - recorded[c]) <= 1e-6, f"TRL logged {float(r)} for a completion scored {recorded[c]}"

    preds = out / "predictions.jsonl"
    flat = [(i, c, r) for ids, cs, rs in scored for i, c, r in zip(ids, cs, rs)]
    with open(preds, "w") as f:
        for i, c, _ in flat:
            f.write(json.dumps({"id": i, "completion": c}) + "\n")
    audit = out / "audit"
    subprocess.run([cli, "audit", "--gold", str(pool), "--predictions", str(preds), "--out", str(audit)], check=True, stdout=subprocess.DEVNULL)
    verdicts = {(v["id"], v["sample"]): v for v in pq.read_table(audit / "verdicts.parquet").to_pylist()}
    sample, worst, equal = {}, 0.0, 0
    for i, c, r in flat:
        s = sample[i] = sample.get(i, -1) + 1
        want = verdicts[(i, s)]["reward_mixed"]
        worst = max(worst, abs(want - r))
        equal += want == r
    n = len(flat)
    verified = sum(v["verified_correct"] for v in verdicts.values())
    print(f"completions scored by TRL: {n} ({verified} verified correct, mean reward {sum(r for *_, r in flat) / max(n, 1):.4f})")
    print(f"TRL's completions log: {len(logged)} completions, each the reward its call returned (float32)")
    print(f"reward equality (TRL's reward calls vs dagmath audit, per completion): {equal}/{n} equal, max |diff| = {worst}")
    if equal != n:
        sys.exit(1)


if __name__ == "__main__":
    main()
