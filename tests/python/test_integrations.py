"""The TRL and verl adapters: calling conventions, chat-format completions, and the verl
Parquet layout."""

import json

import pyarrow.parquet as pq
import pytest

import dagmath
from dagmath.integrations import trl, verl


def rows():
    return [dagmath.compose(op=3 + i, mode=["forward", "reverse"][i % 2], seed=i) for i in range(4)]


def test_trl_reward_in_grpo_calling_convention():
    rs = rows()
    completions = [r["completion"] for r in rs[:2]] + ["nothing", rs[3]["completion"][:40]]
    kw = {"graph": [r["graph"] for r in rs], "id": [r["id"] for r in rs], "trainer_state": None, "log_extra": None, "log_metric": None}
    got = trl.reward(prompts=[r["prompt"] for r in rs], completions=completions, completion_ids=None, **kw)
    assert got == dagmath.rewards(completions, kw["graph"])
    assert got[:2] == [1.0, 1.0] and got[2] == 0.0
    chat = [[{"role": "assistant", "content": c}] for c in completions]
    assert trl.reward(prompts=None, completions=chat, **kw) == got
    strict = trl.make_reward(kind="strict")
    assert strict(prompts=None, completions=completions, **kw) == [1.0, 1.0, 0.0, 0.0]
    # Without ids (no cache), and a second call served from the cache, score the same.
    no_ids = {k: v for k, v in kw.items() if k != "id"}
    assert trl.reward(prompts=None, completions=completions, **no_ids) == got
    assert strict(prompts=None, completions=completions, **kw) == [1.0, 1.0, 0.0, 0.0]


def test_trl_reward_refuses_bad_setups():
    with pytest.raises(ValueError, match="'best'"):
        trl.make_reward(kind="best")
    with pytest.raises(ValueError, match="no `graph` column"):
        trl.make_reward()(prompts=["p"], completions=["c"], answer=[1])
    with pytest.raises(ValueError, match="neither a str"):
        trl.reward(["p"], [42], [rows()[0]["graph"]])
    with pytest.raises(ValueError, match="int 7"):
        trl.reward(["p"], ["c"], [7], id=["x"])


def test_verl_compute_score_and_parquet(dataset, tmp_path):
    out = tmp_path / "rl.parquet"
    n = verl.to_verl_parquet(str(dataset), str(out), split="train")
    t = pq.read_table(out).to_pylist()
    assert n == len(t) == 300
    r = t[0]
    assert r["data_source"] == "dagmath" and r["prompt"][0]["role"] == "user"
    assert r["prompt"][0]["content"].startswith("<question> ")
    assert r["reward_model"]["style"] == "rule"
    assert r["extra_info"]["split"] == "train"
    src = pq.read_table(sorted((dataset / "data").glob("train-*.parquet"))[0]).to_pylist()[0]
    assert json.loads(r["reward_model"]["ground_truth"]) == src["graph"]
    gt = r["reward_model"]["ground_truth"]
    assert verl.compute_score(r["data_source"], src["completion"], gt, r["extra_info"]) == 1.0
    assert verl.compute_score("dagmath", "no", gt) == 0.0
    assert verl.compute_score_batched(["dagmath"] * 2, [src["completion"], "no"], [gt, gt], kind="strict") == [1.0, 0.0]
    with pytest.raises(ValueError, match="no shards"):
        verl.to_verl_parquet(str(dataset), str(tmp_path / "x.parquet"), split="nope")
