"""dagmath's verifier as verl's reward, and dagmath datasets in verl's RL Parquet layout.

In a verl config::

    custom_reward_function:
      path: <site-packages>/dagmath/integrations/verl.py   # or a file that imports it
      name: compute_score
      # reward_kwargs: {kind: mixed, alpha: 0.2, rule: strict}
    data:
      train_files: rl.parquet        # from to_verl_parquet()

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` per response;
``ground_truth`` is what :func:`to_verl_rows` stored in ``reward_model.ground_truth``: the gold
graph as JSON. :func:`compute_score_batched` follows verl's ``BatchRewardManager`` convention
and scores a whole batch in parallel.
"""

import functools
import glob
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence

import dagmath


@functools.lru_cache(maxsize=1 << 16)
def _gold_of_json(text: str) -> "dagmath.Gold":
    """A JSON ground truth read once (verl scores each prompt's group against one string)."""
    return dagmath.gold(text)


def _gold(g: Any) -> Any:
    return _gold_of_json(g) if isinstance(g, str) else g


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Optional[Dict[str, Any]] = None,
    kind: str = "mixed",
    alpha: float = 0.2,
    rule: str = "strict",
    format: Optional[str] = None,
    **_: Any,
) -> float:
    """The reward of one response: ``ground_truth`` is a gold in any form :func:`dagmath.gold`
    reads (the JSON graph :func:`to_verl_rows` writes, a graph, a row, a reference record).
    The trace format is ``format``, else ``extra_info["trace_format"]`` (which
    :func:`to_verl_parquet` copies from the dataset's manifest), else ``full``."""
    fmt = format or _format_of(extra_info)
    return dagmath.rewards(
        [solution_str], [_gold(ground_truth)], kind=kind, alpha=alpha, rule=rule, format=fmt
    )[0]


def _format_of(extra_info: Any) -> str:
    if isinstance(extra_info, dict):
        return extra_info.get("trace_format") or "full"
    return "full"


def compute_score_batched(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Optional[Sequence[Any]] = None,
    kind: str = "mixed",
    alpha: float = 0.2,
    rule: str = "strict",
    format: Optional[str] = None,
    **_: Any,
) -> List[float]:
    """:func:`compute_score` over a batch, in parallel with the GIL released (one call per
    trace format present)."""
    golds = [_gold(g) for g in ground_truths]
    texts = list(solution_strs)
    infos = list(extra_infos) if extra_infos is not None else [None] * len(texts)
    formats = [format or _format_of(e) for e in infos]
    out = [0.0] * len(texts)
    for fmt in sorted(set(formats)):
        idx = [i for i, f in enumerate(formats) if f == fmt]
        scores = dagmath.rewards(
            [texts[i] for i in idx], [golds[i] for i in idx],
            kind=kind, alpha=alpha, rule=rule, format=fmt,
        )
        for i, r in zip(idx, scores):
            out[i] = r
    return out


def to_verl_rows(
    rows: Iterable[Dict[str, Any]],
    data_source: str = "dagmath",
    system_prompt: Optional[str] = None,
    trace_format: str = "full",
) -> List[Dict[str, Any]]:
    """dagmath dataset rows (dicts with the shard columns) as verl RL rows: ``prompt`` as chat
    messages, ``ability``, ``reward_model`` = ``{style: "rule", ground_truth: <graph JSON>}``,
    ``data_source`` and ``extra_info`` (split, index, id, op, template, mode, answer, and the
    dataset's ``trace_format``, which :func:`compute_score` verifies in)."""
    out = []
    for i, r in enumerate(rows):
        graph = r.get("graph")
        if graph is None:
            raise ValueError(f"row {i}: no `graph` column (keys: {sorted(r)})")
        messages = [{"role": "user", "content": r["prompt"]}]
        if system_prompt is not None:
            messages.insert(0, {"role": "system", "content": system_prompt})
        out.append(
            {
                "data_source": data_source,
                "prompt": messages,
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": json.dumps(list(graph))},
                "extra_info": {
                    "split": r.get("split", ""),
                    "index": i,
                    "id": r.get("id", str(i)),
                    "op": int(r.get("op", 0)),
                    "template": r.get("template", ""),
                    "mode": r.get("mode", ""),
                    "answer": int(r.get("answer", 0)),
                    "trace_format": trace_format,
                },
            }
        )
    return out


def to_verl_parquet(
    dataset: str,
    out: str,
    split: Optional[str] = None,
    data_source: str = "dagmath",
    system_prompt: Optional[str] = None,
) -> int:
    """Convert a dagmath dataset folder (``dagmath generate``'s output), or one of its splits,
    to one verl RL Parquet file at ``out``; returns the number of rows. Needs ``pyarrow``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pattern = os.path.join(dataset, "data", f"{split}-*.parquet" if split else "*.parquet")
    files = sorted(glob.glob(pattern))
    if not files:
        raise ValueError(f"dataset {dataset!r}: no shards match {pattern!r}")
    rows: List[Dict[str, Any]] = []
    for f in files:
        rows.extend(pq.read_table(f).to_pylist())
    # The dataset's trace format (manifests written before formats existed mean `full`).
    fmt = "full"
    manifest = os.path.join(dataset, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as m:
            fmt = json.load(m).get("trace_format") or "full"
    table = pa.Table.from_pylist(to_verl_rows(rows, data_source, system_prompt, fmt))
    tmp = out + ".tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, out)
    return table.num_rows
