#!/usr/bin/env python3
"""transformers' `generate` on a dagmath export: the PyTorch side of `bench_rollout`.

    python examples/bench_rollout_hf.py EXPORT_DIR PROMPTS.json

PROMPTS.json (written by `cargo run --release --example bench_rollout` when DAGMATH_PYTHON is
set) holds {"prompts": [[id, ...], ...], "samples": 8, "max_new_tokens": 320,
"temperature": 0.7, "stop": [id, ...], "eos": id}. Each prompt is one `generate` call with
`num_return_sequences = samples` (one batch of equal-length rows, no padding), sampling at the
temperature with top-k and top-p off; a row stops at EOS or once its new tokens end with the
`stop` sequence (`</answer>`), as dagmath's decoder stops. The model runs in float32 with eager
attention, on the CPU, with torch's default threads. Prints one JSON line:
{"new_tokens": n, "seconds": s, "tokens_per_s": n / s, "torch": version,
"transformers": version, "threads": t}; only `generate` is timed, not the model's loading.
"""

import json
import sys
import time


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    export_dir, prompts_path = sys.argv[1], sys.argv[2]
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, StoppingCriteria, StoppingCriteriaList

    with open(prompts_path) as f:
        spec = json.load(f)
    stop = torch.tensor(spec["stop"], dtype=torch.long)
    eos = spec["eos"]

    class StopSequence(StoppingCriteria):
        """Per row: done once the last len(stop) tokens (after the prompt) are `stop`."""

        def __init__(self, prompt_len):
            self.prompt_len = prompt_len

        def __call__(self, input_ids, scores, **kwargs):
            k = stop.numel()
            if input_ids.shape[1] - self.prompt_len < k:
                return torch.zeros(input_ids.shape[0], dtype=torch.bool)
            return (input_ids[:, -k:] == stop).all(dim=1)

    model = AutoModelForCausalLM.from_pretrained(
        export_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    total, seconds = 0, 0.0
    with torch.no_grad():
        for prompt in spec["prompts"]:
            ids = torch.tensor([prompt], dtype=torch.long)
            torch.manual_seed(len(prompt))
            t0 = time.perf_counter()
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=spec["temperature"],
                top_k=0,
                top_p=1.0,
                max_new_tokens=spec["max_new_tokens"],
                num_return_sequences=spec["samples"],
                eos_token_id=eos,
                pad_token_id=eos,  # finished rows are padded with EOS
                stopping_criteria=StoppingCriteriaList([StopSequence(len(prompt))]),
            )
            seconds += time.perf_counter() - t0
            for row in out[:, len(prompt):].tolist():
                n = len(row)
                # Rows that finished early are padded: count up to the stop (inclusive).
                for i in range(len(row)):
                    if row[i] == eos:
                        n = i  # dagmath's completions do not count the EOS either
                        break
                    if i + 1 >= stop.numel() and row[i + 1 - stop.numel(): i + 1] == spec["stop"]:
                        n = i + 1
                        break
                total += n
    print(
        json.dumps(
            {
                "new_tokens": total,
                "seconds": seconds,
                "tokens_per_s": total / seconds if seconds > 0 else 0.0,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
