"""Throughput of `dagmath.rewards()` from Python beside the reference's Python scorer.

    python examples/bench_python_rewards.py [REFERENCE_CHECKOUT] [--n 100000] [--op 10]

REFERENCE_CHECKOUT is a checkout of github.com/Interplay-LM-Reasoning/Interplay-LM-Reasoning
(its `verl/reward_fn.py` and `utils/`; nothing of it is copied here). Without one, the
reference is reported missing and only dagmath is timed.

The completions are the gold completions of N generated op-N problems (zoo, forward/reverse
50/50), every fourth with a wrong answer; the gold is each row's `graph` as pyarrow returns it.
Timed: `rewards()` with 1 thread and with every core, the golds passed raw (converted from
Python dicts on every call), prepared once with `dagmath.gold`, and as the dataset's Arrow
`graph` column (`table.column("graph")`, decoded by the workers with the GIL released). The reference scores each
completion with `compute_score_with_step_process` (its verl reward, re-parsing the gold trace
per call as it does there; dagmath computes the same formula, `kind="penalty"`), on the first --ref-n completions, one core.
Figures are completions per second, median of --trials runs.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagmath

# The reference's verl reward (`compute_score_with_step_process`) is 0 for a wrong answer, else
# 0.2·outcome + 0.8·max(0, 1 − penalties/|V|): dagmath's `penalty` reward, so both sides
# compute the same figure.
KIND = "penalty"


def timed(f, trials):
    times = []
    for _ in range(trials):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def load_reference(root):
    fn = Path(root) / "verl" / "reward_fn.py"
    if not fn.is_file():
        return None
    sys.path.insert(0, str(root))
    spec = importlib.util.spec_from_file_location("interplay_reward_fn", fn)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.compute_score_with_step_process


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reference", nargs="?", help="a checkout of Interplay-LM-Reasoning")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--op", type=int, default=10)
    ap.add_argument("--ref-n", type=int, default=5_000)
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as d:
        recipe = Path(d) / "r.toml"
        recipe.write_text(
            f'name = "bench"\nseed = 5\nshard_size = 1000000\n\n[[splits]]\nname = "train"\n'
            f'size = {args.n}\nops = "{args.op}"\ntemplates = {{ zoo = 1.0 }}\n'
            f"modes = {{ forward = 0.5, reverse = 0.5 }}\n"
        )
        dagmath.generate(str(recipe), f"{d}/out")
        import pyarrow as pa

        table = pa.concat_tables(
            pq.read_table(f, columns=["completion", "graph", "answer", "solution"])
            for f in sorted(Path(f"{d}/out/data").glob("*.parquet"))
        )
        rows = table.to_pylist()
        column = table.column("graph")
    texts = [
        r["completion"] if i % 4 else r["completion"].replace(f"<answer> {r['answer']} ", f"<answer> {r['answer'] + 1} ")
        for i, r in enumerate(rows)
    ]
    graphs = [r["graph"] for r in rows]
    n = len(texts)
    cores = os.cpu_count()
    print(f"{n} op-{args.op} completions (zoo, forward/reverse 50/50, every 4th wrong answer); {cores} cores; "
          f"load average {os.getloadavg()[0]:.2f}; median of {args.trials} trials")

    prep_t = time.perf_counter()
    golds = [dagmath.gold(g) for g in graphs]
    prep = time.perf_counter() - prep_t
    r1 = dagmath.rewards(texts, graphs, kind=KIND, threads=1)
    assert r1 == dagmath.rewards(texts, golds, kind=KIND), "prepared golds score the same"
    assert r1 == dagmath.rewards(texts, column, kind=KIND), "the Arrow column scores the same"
    res = {}
    forms = [("raw graphs", graphs), ("prepared golds", golds), ("Arrow column", column)]
    for label, g in forms:
        for threads in [1, None]:
            s = timed(lambda: dagmath.rewards(texts, g, kind=KIND, threads=threads), args.trials)
            res[(label, threads)] = n / s
            print(f"  dagmath.rewards, {label:14}, {'1 thread' if threads else 'all cores':9}: {n / s:12,.0f} completions/s")
    print(f"  (dagmath.gold on {n} graphs, once: {prep:.2f}s, {n / prep:,.0f}/s)")
    print(f"  mean {KIND} reward {sum(r1) / n:.4f}")

    score = load_reference(args.reference) if args.reference else None
    if score is None:
        print(f"reference scorer: MISSING (pass a checkout of Interplay-LM-Reasoning; got {args.reference!r})")
        return
    m = min(args.ref_n, n)
    gt = [{"answer": str(r["answer"]), "solution": r["solution"]} for r in rows[:m]]
    t = time.perf_counter()
    ref = [score(texts[i], gt[i])["score"] for i in range(m)]
    ref_rate = m / (time.perf_counter() - t)
    print(f"  reference compute_score_with_step_process, 1 core: {ref_rate:12,.0f} completions/s ({m} completions)")
    print(f"  mean reward on those {m}: reference {sum(ref) / m:.4f}, dagmath {sum(r1[:m]) / m:.4f}")
    for label, _ in forms:
        print(f"  per core ({label}): dagmath is {res[(label, 1)] / ref_rate:,.0f}x the reference; all cores {res[(label, None)] / ref_rate:,.0f}x")


if __name__ == "__main__":
    main()
