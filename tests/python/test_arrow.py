"""Golds as the dataset's Arrow `graph` column: `rewards` reads a pyarrow Array or
ChunkedArray through the Arrow C data interface and scores exactly as with the same graphs
passed as Python objects; bad columns raise ValueError naming what is wrong."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dagmath


def table(dataset):
    return pa.concat_tables(pq.read_table(f) for f in sorted((dataset / "data").glob("*.parquet")))


def completions(rows):
    """Each gold completion, and every third one with its answer changed."""
    out = []
    for i, r in enumerate(rows):
        c = r["completion"]
        if i % 3 == 0:
            c = c.replace(f"<answer> {r['answer']} </answer>", f"<answer> {r['answer'] + 1} </answer>")
        out.append(c)
    return out


@pytest.mark.parametrize("kind", ["outcome", "process", "mixed", "strict", "penalty"])
def test_an_arrow_column_scores_as_python_objects_do(dataset, kind):
    t = table(dataset)
    rows = t.to_pylist()
    texts = completions(rows)
    as_python = dagmath.rewards(texts, [r["graph"] for r in rows], kind=kind, alpha=0.3)
    column = t.column("graph")
    assert isinstance(column, pa.ChunkedArray) and column.num_chunks > 1
    assert dagmath.rewards(texts, column, kind=kind, alpha=0.3) == as_python
    assert dagmath.rewards(texts, column.combine_chunks(), kind=kind, alpha=0.3) == as_python
    assert dagmath.rewards(texts, column, kind=kind, alpha=0.3, threads=1) == as_python


def test_bad_arrow_columns_raise_value_errors(dataset):
    t = table(dataset)
    texts = [r["completion"] for r in t.to_pylist()]
    with pytest.raises(ValueError, match="(?s)golds.*list<struct>"):
        dagmath.rewards(texts, pa.array(range(len(texts))))
    with pytest.raises(ValueError, match="completions: 1 items, but golds"):
        dagmath.rewards(texts[:1], t.column("graph"))
    graphs = t.column("graph").combine_chunks()
    with_null = pa.concat_arrays([graphs.slice(0, 2), pa.nulls(1, graphs.type)])
    with pytest.raises(ValueError, match=r"golds\[2\] is null"):
        dagmath.rewards(texts[:3], with_null)
    # A node whose parent is not an earlier node.
    g = [{"name": "a", "value": 1, "parents": ["b"], "kind": "constant"}, {"name": "b", "value": 2, "parents": [], "kind": "constant"}]
    bad = pa.array([g], type=graphs.type)
    with pytest.raises(ValueError, match=r"golds\[0\].*not an earlier node"):
        dagmath.rewards(["x"], bad)
