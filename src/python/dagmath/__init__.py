"""dagmath from Python: verify reasoning traces against their gold dependency graphs.

The verifier, rewards, pass@k and the problem generator of the dagmath crate (arXiv
2512.07783), compiled from Rust. A *gold* is what a dataset row holds: its ``graph`` column as
``datasets`` or pyarrow return it, the whole row, a reference-format record (``solution`` holds
the gold trace), a JSON string of any of these, or a :class:`Gold` made once with :func:`gold`.

>>> import dagmath
>>> row = dagmath.compose(op=4, template="zoo", mode="forward", seed=7)
>>> dagmath.verify(row["completion"], row["graph"]).verified_correct
True
>>> dagmath.rewards([row["completion"]], [row["graph"]], kind="mixed")
[1.0]

Ready reward functions for RL engines live in :mod:`dagmath.integrations.trl` and
:mod:`dagmath.integrations.verl`.
"""

from ._dagmath import (
    Gold,
    Issue,
    Verdict,
    __version__,
    compose,
    generate,
    gold,
    pass_at_k,
    rewards,
    summarize,
    verify,
)

__all__ = [
    "Gold",
    "Issue",
    "Verdict",
    "__version__",
    "compose",
    "generate",
    "gold",
    "pass_at_k",
    "rewards",
    "summarize",
    "verify",
]
