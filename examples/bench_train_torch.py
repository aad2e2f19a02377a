#!/usr/bin/env python3
"""PyTorch CPU training throughput for dagmath's Qwen2 model, the reference for `bench_train`.

Builds transformers' Qwen2ForCausalLM (float32, sdpa attention, tied embeddings, RMSNorm eps
1e-6, RoPE theta 1e6) with the same dimensions as a dagmath preset and times full training
steps on random token ids: forward, mean next-token cross-entropy over all positions, backward,
grad-norm clip 1.0, AdamW (lr 1e-3, betas 0.9/0.999, wd 0.1, eps 1e-8), zero_grad.

The Rust `bench_train` example runs it as a subprocess, e.g.

    python examples/bench_train_torch.py --preset tiny --seq-len 512 --batch 8 --steps 10 --threads 2

and reads the single JSON line it prints on stdout:

    {"framework": "pytorch", "torch": ..., "preset": ..., "params": ..., "seq_len": ...,
     "batch": ..., "threads": ..., "tokens_per_s": ..., "step_ms_median": ...}

Nothing else goes to stdout; warnings and logs go to stderr.
"""

import argparse
import json
import os
import statistics
import sys
import time

PRESETS = {
    #          hidden layers heads kv_heads intermediate
    "tiny": (128, 4, 4, 2, 512),
    "small": (384, 6, 6, 2, 1024),
    "paper": (768, 12, 12, 2, 3072),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default=None)
    p.add_argument("--hidden", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--kv-heads", type=int)
    p.add_argument("--intermediate", type=int)
    p.add_argument("--vocab", type=int, default=476)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    dims = ["hidden", "layers", "heads", "kv_heads", "intermediate"]
    if a.preset is None and all(getattr(a, d) is None for d in dims):
        a.preset = "tiny"
    base = PRESETS.get(a.preset, (None,) * len(dims))
    for d, v in zip(dims, base):
        if getattr(a, d) is None:
            setattr(a, d, v)  # explicit flags override the preset's value
    if a.preset and tuple(getattr(a, d) for d in dims) != base:
        a.preset += "+custom"
    missing = [d for d in dims if getattr(a, d) is None]
    if missing:
        p.error("without --preset, give all of --hidden --layers --heads --kv-heads --intermediate")
    if a.steps < 1:
        p.error("--steps must be >= 1")
    return a


def main():
    a = parse_args()
    # Keep stdout for the JSON line only: anything else printed goes to stderr.
    real_stdout, sys.stdout = sys.stdout, sys.stderr

    import torch
    import torch.nn.functional as F
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = Qwen2Config(
        vocab_size=a.vocab,
        hidden_size=a.hidden,
        num_hidden_layers=a.layers,
        num_attention_heads=a.heads,
        num_key_value_heads=a.kv_heads,
        intermediate_size=a.intermediate,
        hidden_act="silu",
        max_position_embeddings=max(2048, a.seq_len),
        rms_norm_eps=1e-6,
        rope_theta=1e6,
        tie_word_embeddings=True,
        attention_dropout=0.0,
        initializer_range=0.02,
        use_cache=False,
        attn_implementation="sdpa",
    )
    model = Qwen2ForCausalLM(cfg).to(torch.float32).train()
    print(f"attention: {model.config._attn_implementation}", file=sys.stderr)
    params = sum(p.numel() for p in model.parameters())  # tied embedding counted once
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)

    def step():
        ids = torch.randint(0, a.vocab, (a.batch, a.seq_len))
        logits = model(input_ids=ids).logits
        # Next-token loss on all positions: predict ids[:, t+1] from position t.
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, a.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        print(f"step {i + 1}/{a.steps}: {times[-1] * 1e3:.1f} ms, loss {loss:.4f}", file=sys.stderr)

    med = statistics.median(times)
    out = {
        "framework": "pytorch",
        "torch": torch.__version__,
        "preset": a.preset or "custom",
        "params": params,
        "seq_len": a.seq_len,
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "tokens_per_s": round(a.batch * a.seq_len / med, 1),
        "step_ms_median": round(med * 1e3, 2),
    }
    real_stdout.write(json.dumps(out) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
