"""Odd golds and odd completions never panic across the FFI: each call returns a verdict or
raises ValueError."""

import random

import pytest

import dagmath


def odd_golds():
    n = lambda name, v=1, p=(), k="constant": {"name": name, "value": v, "parents": list(p), "kind": k}
    yield [n("a"), n("a")]  # duplicate names
    yield [n("a", k="unknown"), n("b", k="unknown"), n("c", 3, ["a", "b"], "total")]
    yield [n("a", 2**63 - 1), n("b", -(2**63), ["a"], "instance")]
    yield [n(f"q{i}", i, [f"q{i - 1}"] if i else [], "instance" if i else "constant") for i in range(127)]
    yield [n(f"q{i}") for i in range(128)]
    yield [n("")]
    yield [n("é ü 数", 0)]
    yield [n("a", 1, ["a"])]


def completions(rng):
    base = dagmath.compose(op=8, mode="reverse", seed=2)["completion"]
    yield ""
    yield "Define  as ; so = = ."
    yield "Define a as x; so x = 1/0. We know a = 3, so we have x = 3. Solution: x = 3."
    yield "<answer> 99999999999999999999999 </answer>"
    yield "Define q0 as A; so A = 0. " * 300
    for _ in range(200):
        b = bytearray(base.encode())
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.choice(b"0123456789xX=;.+-*/() <>abcDef")
        yield b.decode(errors="replace")


def test_no_panics():
    rng = random.Random(1)
    texts = list(completions(rng))
    golds = list(odd_golds()) + [dagmath.compose(op=8, mode="reverse", seed=2)["graph"]]
    for g in golds:
        try:
            prepared = dagmath.gold(g)
        except ValueError:
            continue
        for rule in ["strict", "interplay"]:
            rs = dagmath.rewards(texts, [prepared] * len(texts), kind="penalty", rule=rule)
            assert all(0.0 <= r <= 1.0 for r in rs)
            for t in texts[:20]:
                dagmath.verify(t, prepared, rule=rule).to_dict()
    with pytest.raises(ValueError, match="128 nodes"):
        dagmath.gold([{"name": f"q{i}", "value": 1, "parents": [], "kind": "constant"} for i in range(128)])
