"""Verdicts through Python equal `dagmath audit`'s, row by row, on a generated dataset with
gold, cut and corrupted completions (both rules)."""

import json
import random

import pyarrow.parquet as pq
import pytest

import dagmath
from conftest import run_cli


def rows(dataset):
    out = []
    for f in sorted((dataset / "data").glob("*.parquet")):
        out.extend(pq.read_table(f).to_pylist())
    return out


def variants(r, rng):
    """The gold completion and a few wrong ones."""
    c = r["completion"]
    digits = [i for i, ch in enumerate(c) if ch.isdigit()]
    i = rng.choice(digits)
    yield c
    yield c[: rng.randrange(len(c))]
    yield c[:i] + str((int(c[i]) + 1) % 10) + c[i + 1 :]
    yield c.replace(" </solution>", f" Answer: {r['answer'] + 1}. </solution>")
    yield "Define nothing. Answer: 3."


@pytest.mark.parametrize("rule", ["strict", "interplay"])
def test_verdicts_equal_the_cli(dataset, cli, tmp_path, rule):
    rng = random.Random(7)
    data = rows(dataset)
    assert len(data) == 360
    preds = []
    for r in data:
        for text in variants(r, rng):
            preds.append({"id": r["id"], "completion": text})
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in preds))
    run_cli(cli, "audit", "--gold", str(dataset), "--predictions", str(path), "--rule", rule, "--alpha", "0.3", "--out", str(tmp_path / "audit"))
    cli_rows = pq.read_table(tmp_path / "audit" / "verdicts.parquet").to_pylist()
    assert len(cli_rows) == len(preds)
    by_key = {(v["id"], v["sample"]): v for v in cli_rows}
    by_id = {r["id"]: r for r in data}
    sample = {}
    golds, texts = [], []
    for p in preds:
        s = sample.get(p["id"], 0)
        sample[p["id"]] = s + 1
        want = by_key[(p["id"], s)]
        got = dagmath.verify(p["completion"], by_id[p["id"]]["graph"], rule=rule).to_dict(alpha=0.3)
        for k, v in got.items():
            assert want[k] == v, (p, k, want[k], v)
        golds.append(by_id[p["id"]]["graph"])
        texts.append(p["completion"])
    # The batched rewards agree too, for every kind.
    for kind in ["outcome", "process", "mixed", "strict", "penalty"]:
        got = dagmath.rewards(texts, golds, kind=kind, alpha=0.3, rule=rule)
        assert got == [by_key[(p["id"], i)][f"reward_{kind}"] for p, i in zip(preds, sample_numbers(preds))]
    # And the summary equals summary.json's.
    summary = json.loads((tmp_path / "audit" / "summary.json").read_text())
    verdicts = [dagmath.verify(t, g, rule=rule) for t, g in zip(texts, golds)]
    mine = dagmath.summarize(verdicts, [by_id[p["id"]] for p in preds], alpha=0.3)
    for k in ["problems", "samples", "verified_correct_rate", "answer_correct_rate", "taxonomy", "pass_at_k", "mean_rewards"]:
        assert mine[k] == pytest.approx(summary[k]) if isinstance(summary[k], float) else mine[k] == summary[k], k


def sample_numbers(preds):
    seen = {}
    for p in preds:
        seen[p["id"]] = seen.get(p["id"], -1) + 1
        yield seen[p["id"]]
