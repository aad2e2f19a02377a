#!/usr/bin/env python3
"""Check a dagmath Hugging Face export against transformers' own Qwen2 implementation.

Loads EXPORT_DIR with AutoModelForCausalLM (float32, eager attention, eval, no grad) and
AutoTokenizer (which must encode like tokenizer.json), runs the input ids from IDS_AND_LOGITS.json and compares
the logits with the ones dagmath computed for the same ids. The Rust side writes the JSON file
(`dagmath logits --model EXPORT_DIR --text TEXT > IDS_AND_LOGITS.json` prints it),

    {"input_ids": [[id, ...], ...],            # batch of equal-length id lists
     "logits":    [[[f32 x vocab] x seq] x batch]}

then runs

    python examples/hf_check.py EXPORT_DIR IDS_AND_LOGITS.json [--tol 1e-4]

and reads the one JSON line on stdout: {"max_abs_diff": x, "shape": [batch, seq, vocab],
"transformers": version, "tokenizer_class": name, "tokenizer_matches_json": bool,
"generation_stops_at_answer": bool}. Exit status: 0 when max_abs_diff <= tol, AutoTokenizer
encodes like tokenizer.json and generation_config.json stops at `</answer>`; 1 when any of these
fails (or the difference is not finite), 2 when the comparison could not be made (missing files, bad JSON, shape mismatch,
weights that do not match the model); the reason goes to stderr.
"""

import argparse
import json
import math
import os
import sys


def fail(msg, code=2):
    print(f"hf_check: error: {msg}", file=sys.stderr)
    sys.exit(code)


def check_export_dir(d):
    if not os.path.isdir(d):
        fail(f"export dir {d!r} does not exist")
    files = set(os.listdir(d))
    if "config.json" not in files:
        fail(f"{d}/config.json is missing")
    weights = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"]
    if not files & set(weights):
        fail(f"no weights in {d} (expected one of {', '.join(weights)})")
    if not files & {"tokenizer.json", "tokenizer_config.json"}:
        fail(f"no tokenizer in {d} (expected tokenizer.json and tokenizer_config.json)")


def load_reference(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        fail(f"cannot read {path}: {e}")
    except json.JSONDecodeError as e:
        fail(f"{path} is not valid JSON: {e}")
    for key in ("input_ids", "logits"):
        if key not in data:
            fail(f"{path} has no {key!r} field")
    ids = data["input_ids"]
    if not ids or not all(isinstance(row, list) and row for row in ids):
        fail("input_ids must be a non-empty list of non-empty id lists")
    lengths = {len(row) for row in ids}
    if len(lengths) != 1:
        fail(f"input_ids rows have different lengths {sorted(lengths)}; pad them to one length")
    return ids, data["logits"]


def tokenizer_agrees(tok, export_dir, ids):
    """Whether `tok` encodes like tokenizer.json itself (text = tokenizer.json's decoding of ids).

    transformers 5 ignores `tokenizer_class` for model_type qwen2 and rebuilds the vocabulary as
    Qwen2Tokenizer's byte-level BPE, which mis-encodes a word-level tokenizer.json; dagmath's
    exports carry an `auto_map` entry that avoids it (see README, Training, Interop).
    """
    path = os.path.join(export_dir, "tokenizer.json")
    if not os.path.exists(path):
        return None
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(path)
    text = raw.decode(ids, skip_special_tokens=False)
    want = raw.encode(text, add_special_tokens=False).ids
    got = tok(text, add_special_tokens=False)["input_ids"]
    if got != want:
        print(f"hf_check: warning: {type(tok).__name__} from AutoTokenizer encodes {text[:60]!r} as "
              f"{got[:12]}, tokenizer.json as {want[:12]}; load it with "
              "PreTrainedTokenizerFast.from_pretrained(dir) instead", file=sys.stderr)
    return got == want


def main():
    p = argparse.ArgumentParser(description="Compare dagmath logits with transformers'.")
    p.add_argument("export_dir")
    p.add_argument("ids_and_logits")
    p.add_argument("--tol", type=float, default=1e-4, help="max allowed |diff| (default 1e-4)")
    a = p.parse_args()

    check_export_dir(a.export_dir)
    ids, ref_logits = load_reference(a.ids_and_logits)

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(a.export_dir)
    except Exception as e:  # noqa: BLE001 - report whatever the loader raised
        fail(f"AutoTokenizer.from_pretrained failed: {type(e).__name__}: {e}")
    print(f"tokenizer: {type(tok).__name__}, {len(tok)} tokens", file=sys.stderr)

    # transformers >= 4.56 calls it `dtype`; older versions only know `torch_dtype`.
    ver = tuple(int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if ver >= (4, 56) else "torch_dtype"
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            a.export_dir, attn_implementation="eager", output_loading_info=True,
            **{dtype_kw: torch.float32})
    except Exception as e:  # noqa: BLE001
        fail(f"AutoModelForCausalLM.from_pretrained failed: {type(e).__name__}: {e}")
    problems = {k: sorted(map(str, v)) for k, v in info.items() if v}
    if problems:
        fail(f"weights do not match the model: {json.dumps(problems)}")
    model.eval()
    vocab = model.config.vocab_size
    print(f"model: {type(model).__name__}, vocab {vocab}, tied "
          f"{model.config.tie_word_embeddings}", file=sys.stderr)

    input_ids = torch.tensor(ids, dtype=torch.long)
    bad = (input_ids < 0) | (input_ids >= vocab)
    if bad.any():
        fail(f"input_ids outside [0, {vocab}): {input_ids[bad].unique().tolist()[:10]}")
    try:
        ref = torch.tensor(ref_logits, dtype=torch.float64)
    except (ValueError, TypeError) as e:
        fail(f"logits are not a rectangular [batch][seq][vocab] array: {e}")
    want = [input_ids.shape[0], input_ids.shape[1], vocab]
    if list(ref.shape) != want:
        fail(f"shape mismatch: dagmath logits {list(ref.shape)}, transformers expects {want} "
             "(batch, seq from input_ids; vocab from config.json)")

    with torch.no_grad():
        ours = model(input_ids=input_ids).logits.to(torch.float64)
    diff = (ours - ref).abs().max().item()
    ok = math.isfinite(diff) and diff <= a.tol
    agrees = tokenizer_agrees(tok, a.export_dir, ids[0])
    stops = stop_ids(model, tok)
    print(json.dumps({"max_abs_diff": diff if math.isfinite(diff) else None,
                      "shape": list(ours.shape), "transformers": transformers.__version__,
                      "tokenizer_class": type(tok).__name__,
                      "tokenizer_matches_json": agrees,
                      "generation_stops_at_answer": stops}))
    if not ok:
        print(f"hf_check: FAIL: max_abs_diff {diff} > tol {a.tol}", file=sys.stderr)
    if agrees is False:
        ok = False
        print("hf_check: FAIL: AutoTokenizer does not encode like tokenizer.json", file=sys.stderr)
    if stops is False:
        ok = False
        print("hf_check: FAIL: generation_config.json does not stop at </answer>", file=sys.stderr)
    sys.exit(0 if ok else 1)


def stop_ids(model, tok):
    """Whether transformers' generate stops at `</answer>` by default (None: no such token)."""
    answer = tok.convert_tokens_to_ids("</answer>")
    if answer is None or answer == tok.unk_token_id:
        return None
    eos = model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    return answer in eos


if __name__ == "__main__":
    main()
