"""Trace formats through Python: a dataset written in each format verifies in its own format
with the same verdicts as `dagmath audit` (which reads the format from the manifest), the full
reader rejects the other formats' traces, and answer_only verdicts say they scored the outcome
only."""

import json

import pyarrow.parquet as pq
import pytest

import dagmath
from conftest import RECIPE, run_cli


def generate(tmp_path, fmt):
    recipe = tmp_path / f"{fmt}.toml"
    recipe.write_text(f'trace_format = "{fmt}"\n' + RECIPE)
    out = tmp_path / fmt
    dagmath.generate(str(recipe), str(out), threads=2)
    assert json.loads((out / "manifest.json").read_text())["trace_format"] == fmt
    rows = []
    for f in sorted((out / "data").glob("*.parquet")):
        rows.extend(pq.read_table(f).to_pylist())
    return out, rows


@pytest.mark.parametrize("fmt", ["terse", "long", "answer_only"])
def test_each_format_verifies_in_its_own_format_as_the_cli_does(tmp_path, cli, fmt):
    out, rows = generate(tmp_path, fmt)
    # Each gold, and the same gold with its answer changed.
    preds = []
    for r in rows:
        c = r["completion"]
        preds.append({"id": r["id"], "completion": c})
        preds.append({"id": r["id"], "completion": c.replace(f"<answer> {r['answer']} </answer>", f"<answer> {r['answer'] + 1} </answer>")})
    path = tmp_path / f"{fmt}.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in preds))
    run_cli(cli, "audit", "--gold", str(out), "--predictions", str(path), "--out", str(tmp_path / f"audit-{fmt}"))
    cli_rows = pq.read_table(tmp_path / f"audit-{fmt}" / "verdicts.parquet").to_pylist()
    by_id = {r["id"]: r for r in rows}
    for p, want in zip(preds, cli_rows):
        assert want["id"] == p["id"]
        v = dagmath.verify(p["completion"], by_id[p["id"]]["graph"], format=fmt)
        assert v.outcome_only == (fmt == "answer_only")
        got = v.to_dict()
        for k in ["verified_correct", "answer_correct", "process_acc", "reward_mixed", "reward_strict"]:
            assert got[k] == want[k], (fmt, p, k)
    golds = [by_id[p["id"]]["graph"] for p in preds]
    texts = [p["completion"] for p in preds]
    assert dagmath.rewards(texts, golds, kind="strict", format=fmt) == [w["reward_strict"] for w in cli_rows]
    # Every gold verifies; every changed answer does not.
    assert [w["verified_correct"] for w in cli_rows] == [i % 2 == 0 for i in range(len(preds))]
    summary = json.loads((tmp_path / f"audit-{fmt}" / "summary.json").read_text())
    assert summary["trace_format"] == fmt


def test_the_full_reader_does_not_accept_another_formats_trace(tmp_path):
    _, rows = generate(tmp_path, "terse")
    texts = [r["completion"] for r in rows]
    golds = [r["graph"] for r in rows]
    assert sum(dagmath.rewards(texts, golds, kind="strict", format="terse")) == len(rows)
    assert sum(dagmath.rewards(texts, golds, kind="strict", format="full")) == 0


def test_a_bad_format_names_the_value():
    with pytest.raises(ValueError, match="format.*'tiny'"):
        dagmath.verify("x", [], format="tiny")
    with pytest.raises(ValueError, match="format.*'tiny'"):
        dagmath.rewards([], [], format="tiny")


@pytest.mark.parametrize("fmt", ["full", "terse", "long", "answer_only"])
def test_compose_writes_each_format_and_its_gold_verifies(fmt):
    for mode in ["forward", "reverse"]:
        row = dagmath.compose(op=8, template="zoo", mode=mode, seed=3, format=fmt)
        full = dagmath.compose(op=8, template="zoo", mode=mode, seed=3)
        assert (row["id"], row["prompt"]) == (full["id"], full["prompt"])
        assert (row["completion"] == full["completion"]) == (fmt == "full")
        v = dagmath.verify(row["completion"], row["graph"], format=fmt)
        assert v.verified_correct and v.outcome_only == (fmt == "answer_only")
    with pytest.raises(ValueError, match="format.*'tiny'"):
        dagmath.compose(op=3, format="tiny")
