"""Every mutation kind of the Rust verifier suite (tests/it/verifier.rs) gives the same verdict
through Python: the suite's expectations hold, and each verdict equals `dagmath audit`'s on a
reference-format gold file holding the same gold traces."""

import json

import pyarrow.parquet as pq
import pytest

import dagmath
from conftest import run_cli

FWD = "Define adult owl in Jefferson Circus as K; so K = 2. Define adult parrot in Jefferson Circus as t; Q = K = 2; so t = 3 * Q = 3 * 2 = 6. Define total number of adult animals in Jefferson Circus as U; so U = K + t = 2 + 6 = 8. Define adult owl in Hamilton Farm as z; O = U + K = 8 + 2 = 10; A = O + t = 10 + 6 = 16; so z = 4 + A = 4 + 16 = 20. Define total number of adult animals in Hamilton Farm as B; so B = z = 20. Answer: 20."
REV = "The question is difficult, so we use equations to solve it. Define adult wolf in Maple Creek as K; so K = 2. Define adult fox in Maple Creek as x; we don't know its value yet but will find it out later. Define adult bear in Maple Creek as R; J = x; so R = 3 + J = 3 + x = x + 3. Define total number of adult animals in Maple Creek as P; T = K + x = 2 + x = x + 2; so P = T + R = (x + 2) + (x + 3) = 2*x + 5. We know P = 11, so we have 2*x + 5 = 11 and we solve it through the following steps: Simplifying the equation: 2*x + 5 = 11. Move all terms to one side: 2*x - 6 = 0. Isolate the term with x: 2*x = 6. Divide both sides by 2: x = 6 / 2. Solution: x = 3. Answer: 3."


def node(name, value, parents, kind):
    return {"name": name, "value": value, "parents": parents, "kind": kind}


JC, HF, MC = "Jefferson Circus", "Hamilton Farm", "Maple Creek"
FWD_GOLD = [
    node(f"adult owl in {JC}", 2, [], "constant"),
    node(f"adult parrot in {JC}", 6, [f"adult owl in {JC}"], "instance"),
    node(f"total number of adult animals in {JC}", 8, [f"adult owl in {JC}", f"adult parrot in {JC}"], "total"),
    node(f"adult owl in {HF}", 20, [f"total number of adult animals in {JC}", f"adult owl in {JC}", f"adult parrot in {JC}"], "instance"),
    node(f"total number of adult animals in {HF}", 20, [f"adult owl in {HF}"], "total"),
]
REV_GOLD = [
    node(f"adult wolf in {MC}", 2, [], "constant"),
    node(f"adult fox in {MC}", 3, [], "unknown"),
    node(f"adult bear in {MC}", 6, [f"adult fox in {MC}"], "instance"),
    node(f"total number of adult animals in {MC}", 11, [f"adult wolf in {MC}", f"adult fox in {MC}", f"adult bear in {MC}"], "total"),
]


def completion(trace, answer):
    body = trace[: -len(f" Answer: {answer}.")]
    return f" {body} </solution> <answer> {answer} </answer>"


def sub(t, a, b):
    assert a in t, a
    return t.replace(a, b)


# (name, which gold, mutated text, strict verified, interplay verified, check on the strict verdict)
CASES = [
    ("gold_fwd", "fwd", FWD, True, True, lambda v: v.process_acc == 1.0 and not v.issues),
    ("gold_rev", "rev", REV, True, True, lambda v: v.process_acc == 1.0 and not v.issues),
    ("completion_form", "fwd", completion(FWD, 20), True, True, None),
    ("no_closing_tag", "rev", completion(REV, 3)[: -len(" </answer>")], True, True, None),
    ("wrong_final_value", "fwd", sub(FWD, "so B = z = 20. Answer: 20.", "so B = z = 21. Answer: 21."), False, False, lambda v: v.nodes[4][1] == "wrong_value" and not v.answer_correct),
    ("right_answer_wrong_final_node", "fwd", sub(FWD, "so B = z = 20.", "so B = 21."), False, False, lambda v: v.answer_correct and v.nodes[4][1] == "wrong_value_and_parents"),
    ("wrong_intermediate", "fwd", sub(FWD, "A = O + t = 10 + 6 = 16", "A = O + t = 10 + 6 = 15"), False, True, lambda v: v.nodes[3][1] == "flawed" and any(i.kind == "wrong_result" for i in v.issues)),
    ("wrong_substitution", "fwd", sub(FWD, "O = U + K = 8 + 2 = 10", "O = U + K = 8 + 3 = 10"), False, None, lambda v: any(i.kind == "wrong_substitution" for i in v.issues)),
    ("wrong_parent", "fwd", sub(FWD, "so B = z = 20", "so B = z + K - K = 20 + 2 - 2 = 20"), False, False, lambda v: v.nodes[4][1] == "wrong_parents"),
    ("same_value_operand", "fwd", sub(FWD, "so t = 3 * Q", "so t = 3 * K"), True, True, lambda v: v.nodes[1][1] == "correct"),
    ("parents_dropped", "fwd", sub(FWD, "Q = K = 2; so t = 3 * Q = 3 * 2 = 6", "so t = 6"), False, None, lambda v: v.nodes[1][1] == "wrong_parents"),
    ("missing_step", "fwd", sub(FWD, f"Define total number of adult animals in {JC} as U; so U = K + t = 2 + 6 = 8. ", ""), False, False, lambda v: v.nodes[2][1] == "missing" and any(i.kind == "undefined_letter" and i.letter == "U" for i in v.issues)),
    ("extra_step", "fwd", sub(FWD, f"Define total number of adult animals in {HF}", f"Define adult crow in {JC} as W; so W = 1. Define total number of adult animals in {HF}"), False, True, lambda v: v.process_acc == 1.0 and len(v.extra) == 1),
    ("renamed_node", "fwd", sub(FWD, f"Define adult owl in {JC} as K", "Define adult owl in Jefferson Zoo as K"), False, False, lambda v: v.nodes[0][1] == "missing"),
    ("case_matters", "fwd", sub(FWD, "Hamilton Farm as B", "hamilton farm as B"), False, None, None),
    ("white_space_does_not", "fwd", sub(FWD, f"Define adult owl in {JC} as K", f"Define   adult owl in {JC}  as  K"), True, None, None),
    ("answer_only_tag", "fwd", " </solution> <answer> 20 </answer>", False, False, lambda v: v.answer_correct and all(s == "missing" for _, s in v.nodes)),
    ("answer_only_line", "fwd", "Answer: 20.", False, False, lambda v: v.answer_correct),
    ("bare_number", "fwd", "20", False, False, lambda v: not v.answer_correct),
    ("truncated", "fwd", completion(FWD, 20)[:200], False, None, None),
    ("other_problem", "fwd", REV, False, False, None),
    ("noise_malformed", "fwd", FWD.replace(". Define", ". Let me think about the next quantity. Define").replace("so U =", "Now the total, so U ="), False, None, lambda v: any(i.kind == "malformed" for i in v.issues)),
    ("noise_on_new_line", "fwd", FWD.replace(". Define", ". Let me think about the next quantity.\nDefine"), True, None, None),
    ("capitalised_words", "fwd", FWD.replace(f"Define adult owl in {HF}", f"Done. So I think A is coming, and B too. Define adult owl in {HF}").replace("so B = z = 20.", "so B = z = 20. Done. So I think A is the answer. X marks it."), True, None, lambda v: not v.issues),
    ("decimal_value", "fwd", sub(FWD, "so K = 2.", "so K = 2.5."), False, None, lambda v: v.nodes[0][1] == "wrong_value"),
    ("decimal_answer", "fwd", completion(FWD, 20).replace("<answer> 20 ", "<answer> 20.9 "), False, None, lambda v: not v.answer_correct),
    ("exact_decimal", "fwd", sub(FWD, "so K = 2.", "so K = 2.0."), True, None, None),
    ("undefined_letter", "fwd", sub(FWD, "so U = K + t = 2 + 6 = 8", "so U = K + Y = 2 + 6 = 8"), False, None, lambda v: any(i.kind == "undefined_letter" and i.letter == "Y" for i in v.issues)),
    ("redefined_letter", "fwd", sub(FWD, f"{JC} as t; Q = K", f"{JC} as K; Q = K"), False, None, lambda v: any(i.kind == "redefined_letter" and i.letter == "K" for i in v.issues)),
    ("reused_letter", "fwd", sub(FWD, "O = U + K", "K = U + K"), False, None, None),
    ("conflicting_answers", "fwd", completion(FWD, 20).replace(" </solution>", " Answer: 21. </solution>"), False, None, lambda v: v.answer_correct and any(i.kind == "answer_conflict" for i in v.issues)),
    ("rev_equation_step", "rev", sub(REV, "Move all terms to one side: 2*x - 6 = 0", "Move all terms to one side: 2*x - 5 = 0"), False, None, None),
    ("rev_wrong_known_value", "rev", sub(REV, "We know P = 11", "We know P = 12"), False, None, None),
    ("rev_wrong_known_node", "rev", sub(REV, "We know P = 11", "We know R = 11"), False, None, None),
    ("rev_equation_start", "rev", sub(REV, "so we have 2*x + 5 = 11", "so we have 2*x + 4 = 11"), False, None, None),
    ("rev_unsolved", "rev", sub(REV, "Solution: x = 3. Answer: 3.", "Answer: 3."), False, None, None),
    ("rev_unknown_replaced", "rev", sub(REV, "so R = 3 + J = 3 + x = x + 3", "so R = 3 + J = 3 + 3 = 6"), False, None, None),
    ("rev_wrong_linear_form", "rev", sub(REV, "so P = T + R = (x + 2) + (x + 3) = 2*x + 5", "so P = T + R = (x + 2) + (x + 3) = 2*x + 6"), False, None, None),
    ("rev_unknown_given_a_value", "rev", sub(REV, "as x; we don't know its value yet but will find it out later.", "as x; so x = 3."), False, None, None),
    ("rev_no_equation", "rev", sub(REV, " We know P = 11, so we have 2*x + 5 = 11 and we solve it through the following steps: Simplifying the equation: 2*x + 5 = 11. Move all terms to one side: 2*x - 6 = 0. Isolate the term with x: 2*x = 6. Divide both sides by 2: x = 6 / 2. Solution: x = 3.", ""), False, None, None),
    ("rev_other_node_hidden", "rev", REV.replace("adult wolf", "adult tmp").replace("adult fox", "adult wolf").replace("adult tmp", "adult fox"), False, False, None),
    ("rev_unknown_not_in_problem", "rev", sub(REV, f"Define adult fox in {MC} as x", f"Define adult deer in {MC} as x"), False, False, None),
]

GOLDS = {"fwd": (FWD_GOLD, FWD), "rev": (REV_GOLD, REV)}


@pytest.mark.parametrize("name,which,text,strict,interplay,check", CASES, ids=[c[0] for c in CASES])
def test_rust_suite_expectations(name, which, text, strict, interplay, check):
    graph, trace = GOLDS[which]
    for gold in (graph, {"solution": trace}):
        v = dagmath.verify(text, gold)
        assert v.verified_correct == strict, v
        if interplay is not None:
            assert dagmath.verify(text, gold, rule="interplay").verified_correct == interplay
        if check is not None:
            assert check(v), v


@pytest.mark.parametrize("rule", ["strict", "interplay"])
def test_every_mutation_equals_the_cli(cli, tmp_path, rule):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"id": k, "problem": "", "question": "", "solution": t, "op": len(g), "template": "zoo"}) + "\n"
            for k, (g, t) in GOLDS.items()
        )
    )
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": c[1], "completion": c[2]}) + "\n" for c in CASES))
    run_cli(cli, "audit", "--gold", str(gold), "--predictions", str(preds), "--rule", rule, "--out", str(tmp_path / "a"))
    want = {(r["id"], r["sample"]): r for r in pq.read_table(tmp_path / "a" / "verdicts.parquet").to_pylist()}
    seen = {}
    for name, which, text, *_ in CASES:
        s = seen[which] = seen.get(which, -1) + 1
        for g in (GOLDS[which][0], {"solution": GOLDS[which][1]}):
            got = dagmath.verify(text, g, rule=rule).to_dict()
            for k, v in got.items():
                assert want[(which, s)][k] == v, (name, k)
