"""The module's functions: verify, rewards, gold, pass_at_k, summarize, compose, generate,
and that bad input raises ValueError naming the value."""

import json

import pytest

import dagmath


def row(op=6, mode="forward", seed=3, template="zoo"):
    return dagmath.compose(op=op, template=template, mode=mode, seed=seed)


def test_compose_is_a_dataset_row_and_deterministic():
    r = row()
    assert set(r) == {
        "id", "split", "op", "template", "mode", "problem", "question", "solution", "answer",
        "prompt", "completion", "graph", "n_nodes", "n_distractors", "depth",
    }
    assert r == row()
    assert r != row(seed=4)
    assert r["op"] == 6 and r["template"] == "zoo" and r["mode"] == "forward"
    assert len(r["graph"]) == r["n_nodes"]
    assert r["graph"][-1]["value"] == r["answer"]
    assert set(r["graph"][0]) == {"name", "value", "parents", "kind"}


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_gold_completion_verifies_in_every_gold_form(mode):
    r = row(mode=mode)
    forms = [
        r["graph"],
        r,
        {"solution": r["solution"]},
        json.dumps(r["graph"]),
        dagmath.gold(r["graph"]),
        # The dict of lists `datasets` makes of a Sequence feature.
        {k: [n[k] for n in r["graph"]] for k in ("name", "value", "parents", "kind")},
    ]
    for g in forms:
        v = dagmath.verify(r["completion"], g)
        assert v.verified_correct and v.answer_correct and v.process_acc == 1.0, g
        assert v.mode == mode and v.rule == "strict"
        assert v.first_issue is None and v.issues == [] and v.extra == []
        assert all(s == "correct" for _, s in v.nodes)
    g = dagmath.gold(r)
    assert len(g) == r["n_nodes"] and g.answer == r["answer"] and g.mode == mode
    assert g.nodes == r["graph"]


def test_verdict_details_and_rewards():
    r = row()
    # A wrong final number.
    bad = r["completion"].replace(f"<answer> {r['answer']} ", f"<answer> {r['answer'] + 1} ")
    v = dagmath.verify(bad, r["graph"])
    assert not v.verified_correct and not v.answer_correct
    assert v.answer == str(r["answer"] + 1)
    assert v.first_issue is None and v.process_acc == 1.0
    # A second, conflicting answer.
    c = dagmath.verify(r["completion"].replace(" </solution>", f" Answer: {r['answer'] + 1}. </solution>"), r)
    assert c.answer_correct and not c.verified_correct
    assert c.first_issue is not None and c.first_issue.kind == "answer_conflict"
    assert str(c.first_issue).startswith("AnswerConflict at byte ")
    assert c.first_issue.at == c.issues[0].at and c.first_issue.letter is None
    d = v.to_dict()
    assert d["reward_outcome"] == 0.0 and d["n_nodes"] == r["n_nodes"]
    assert v.reward("mixed", 0.2) == pytest.approx(0.2 * 0 + 0.8 * v.process_acc)
    got = dagmath.rewards([r["completion"], bad], [r["graph"], r["graph"]], kind="mixed")
    assert got == [1.0, v.reward("mixed")]
    for kind in ["outcome", "process", "mixed", "strict", "penalty"]:
        assert dagmath.rewards([bad], [r], kind=kind, alpha=0.3) == [v.reward(kind, 0.3)]
    assert dagmath.rewards([], []) == []


def test_rewards_do_not_depend_on_threads():
    rows = [row(op=2 + i % 12, mode=["forward", "reverse"][i % 2], seed=i) for i in range(200)]
    texts = [r["completion"] if i % 3 else r["completion"][: len(r["completion"]) // 2] for i, r in enumerate(rows)]
    golds = [r["graph"] for r in rows]
    one = dagmath.rewards(texts, golds, threads=1)
    assert one == dagmath.rewards(texts, golds)
    assert one == [dagmath.verify(t, g).reward() for t, g in zip(texts, golds)]
    assert sum(x == 1.0 for x in one) == sum(1 for i in range(200) if i % 3)


def test_pass_at_k_and_summarize():
    assert dagmath.pass_at_k(10, 0, 5) == 0.0
    assert dagmath.pass_at_k(10, 10, 1) == 1.0
    assert dagmath.pass_at_k(4, 1, 2) == pytest.approx(0.5)
    rs = [row(seed=s) for s in range(3)]
    verdicts, problems = [], []
    for i, r in enumerate(rs):
        for s in range(4):
            text = r["completion"] if s < i else "no trace"
            verdicts.append(dagmath.verify(text, r))
            problems.append(r if s % 2 else r["id"])
    summary = dagmath.summarize(verdicts, [{"id": p} if isinstance(p, str) else p for p in problems])
    assert summary["problems"] == 3 and summary["samples"] == 12
    assert summary["samples_per_problem"] == [4, 4]
    top = [p for p in summary["pass_at_k"] if p["k"] == 1 and set(p) == {"split", "op", "template", "mode", "k", "problems", "verified", "answer"}]
    assert sum(p["problems"] for p in top) == 3
    assert summary["verified_correct_rate"] == pytest.approx(3 / 12)


def test_generate_matches_the_cli(tmp_path, cli):
    from conftest import RECIPE, run_cli

    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE)
    manifest = dagmath.generate(str(recipe), str(tmp_path / "py"), threads=1)
    assert [s["name"] for s in manifest["splits"]] == ["train", "test"]
    run_cli(cli, "generate", "--recipe", str(recipe), "--out", str(tmp_path / "cli"), "--threads", "2")
    files = sorted(p.relative_to(tmp_path / "py") for p in (tmp_path / "py" / "data").iterdir())
    assert files
    for f in files:
        assert (tmp_path / "py" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f


BAD = [
    (lambda r: dagmath.verify(r["completion"], 5), "int 5"),
    (lambda r: dagmath.verify(r["completion"], "not json"), "not json"),
    (lambda r: dagmath.verify(r["completion"], []), "empty graph"),
    (lambda r: dagmath.verify(r["completion"], [{"name": "a", "value": 1, "parents": ["zz"], "kind": "constant"}]), "'zz'"),
    (lambda r: dagmath.verify(r["completion"], [{"name": "a", "value": 1, "parents": [], "kind": "weird"}]), "'weird'"),
    (lambda r: dagmath.verify(r["completion"], [{"name": "a", "value": "one", "parents": [], "kind": "constant"}]), "'one'"),
    (lambda r: dagmath.verify(r["completion"], [{"name": "a"}]), "`value`"),
    (lambda r: dagmath.verify(r["completion"], {"solution": "no steps"}), "reference record"),
    (lambda r: dagmath.verify(None, r), "None"),
    (lambda r: dagmath.verify(r["completion"], r, rule="loose"), "'loose'"),
    (lambda r: dagmath.rewards([r["completion"]], [r], kind="best"), "'best'"),
    (lambda r: dagmath.rewards([r["completion"]], [r], alpha=1.5), "1.5"),
    (lambda r: dagmath.rewards([r["completion"]], [r], threads=0), "threads: 0"),
    (lambda r: dagmath.rewards([r["completion"]], [r, r]), "golds: 2"),
    (lambda r: dagmath.rewards(r["completion"], [r]), "one str"),
    (lambda r: dagmath.rewards([b"bytes"], [r]), "b'bytes'"),
    (lambda r: dagmath.rewards(["a", "b"], [r, 7]), "golds[1]"),
    (lambda r: dagmath.pass_at_k(3, 4, 1), "c=4"),
    (lambda r: dagmath.pass_at_k(3, 1, 0), "k=0"),
    (lambda r: dagmath.pass_at_k(-1, 0, 1), "n=-1"),
    (lambda r: dagmath.summarize([], []), "empty"),
    (lambda r: dagmath.summarize([dagmath.verify("x", r)], [3]), "int 3"),
    (lambda r: dagmath.compose(op=0), "op 0"),
    (lambda r: dagmath.compose(op=-3), "-3"),
    (lambda r: dagmath.compose(op=500), "op 500"),
    (lambda r: dagmath.compose(op=4, template="castle"), "'castle'"),
    (lambda r: dagmath.compose(op=4, mode="sideways"), "'sideways'"),
    (lambda r: dagmath.compose(op=4, distractors="lots"), "lots"),
    (lambda r: dagmath.generate("/nonexistent/recipe.toml", "/tmp/x"), "/nonexistent/recipe.toml"),
    (lambda r: dagmath.verify(r["completion"], r).to_dict(alpha=-1), "-1"),
]


@pytest.mark.parametrize("call,named", BAD, ids=[b[1] for b in BAD])
def test_bad_input_raises_value_error_naming_it(call, named):
    with pytest.raises(ValueError) as e:
        call(row())
    assert named in str(e.value), str(e.value)
