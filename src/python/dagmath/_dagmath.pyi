"""Type stubs of the native module (src/python/*.rs)."""

from os import PathLike
from typing import Any, Literal, Mapping, Optional, Sequence, Union

__version__: str

Rule = Literal["strict", "interplay"]
RewardKind = Literal["outcome", "process", "mixed", "strict", "penalty"]
TraceFormat = Literal["full", "terse", "long", "answer_only"]
NodeStatus = Literal[
    "correct", "flawed", "wrong_value", "wrong_parents", "wrong_value_and_parents", "missing"
]
GoldLike = Union["Gold", Sequence[Mapping[str, Any]], Mapping[str, Any], str]
"""A dataset row's ``graph`` (list of ``{name, value, parents, kind}``, or the dict of lists
``datasets`` makes of a ``Sequence`` feature), a whole dataset row, a reference-format record
(``solution`` = the gold trace), a JSON string of one of these, or a :class:`Gold`."""

class Gold:
    """A gold graph read once (:func:`gold`), to verify many completions against."""

    @property
    def mode(self) -> Literal["forward", "reverse"]: ...
    @property
    def answer(self) -> int: ...
    @property
    def nodes(self) -> list[dict[str, Any]]:
        """The nodes in the dataset's ``graph`` column layout."""
    def __len__(self) -> int: ...

class Issue:
    """One flaw found while reading a completion."""

    @property
    def kind(self) -> str:
        """``wrong_result``, ``wrong_substitution``, ``undefined_letter``, ``redefined_letter``,
        ``duplicate_name``, ``unassigned``, ``malformed``, ``bad_arithmetic``,
        ``answer_conflict``, ``bad_answer``, ``missing_equation``, ``wrong_known``,
        ``equation_mismatch``, ``unsolved``, ``extra_unknown`` or ``check_mismatch`` (a
        ``long`` trace's check contradicting its step)."""
    @property
    def letter(self) -> Optional[str]:
        """The letter of ``undefined_letter`` / ``redefined_letter``."""
    @property
    def at(self) -> int:
        """Byte offset (UTF-8) in the completion where the offending clause starts."""
    def __str__(self) -> str:
        """verdicts.parquet's ``first_issue`` form, e.g. ``WrongResult at byte 120``."""

class Verdict:
    """The verdict of one completion against its gold graph."""

    @property
    def outcome_only(self) -> bool:
        """Only the outcome was scored (``format="answer_only"``): ProcessAcc and the
        process-based rewards then equal the outcome."""
    @property
    def verified_correct(self) -> bool:
        """Every gold node correct, the right answer, and (rule ``strict``) no extra node and
        no issue."""
    @property
    def answer_correct(self) -> bool: ...
    @property
    def process_acc(self) -> float:
        """ProcessAcc: the share of gold nodes correct under the rule."""
    @property
    def answer(self) -> Optional[str]:
        """The answer read from the completion (``7``, ``7/2``), or None."""
    @property
    def rule(self) -> Rule: ...
    @property
    def mode(self) -> Literal["forward", "reverse"]: ...
    @property
    def nodes(self) -> list[tuple[str, NodeStatus]]:
        """``(name, status)`` per gold node, in gold order."""
    @property
    def extra(self) -> list[tuple[int, int]]:
        """Byte ranges of the names of defined nodes absent from the gold graph."""
    @property
    def issues(self) -> list[Issue]: ...
    @property
    def first_issue(self) -> Optional[Issue]: ...
    def reward(self, kind: RewardKind = "mixed", alpha: float = 0.2) -> float:
        """One scalar reward (``alpha`` weighs the outcome in ``mixed`` and ``penalty``)."""
    def to_dict(self, alpha: float = 0.2) -> dict[str, Any]:
        """The row ``dagmath audit`` writes to verdicts.parquet (without the gold keys)."""

def gold(obj: GoldLike) -> Gold:
    """Read a gold graph once; raises ValueError naming what is wrong with ``obj``."""

def verify(
    completion: str, gold: GoldLike, rule: Rule = "strict", format: TraceFormat = "full"
) -> Verdict:
    """Verify one completion against its gold graph. ``format`` is the trace format the
    completion is written in (a dataset's ``manifest.json`` records its ``trace_format``;
    ``answer_only`` scores the outcome only and says so in ``Verdict.outcome_only``)."""

def rewards(
    completions: Sequence[str],
    golds: Union[Sequence[GoldLike], Any],
    kind: RewardKind = "mixed",
    alpha: float = 0.2,
    rule: Rule = "strict",
    threads: Optional[int] = None,
    format: TraceFormat = "full",
) -> list[float]:
    """One reward per completion (``golds[i]`` is the gold of ``completions[i]``), computed in
    parallel with the GIL released; ``threads=None`` uses every core. ``mixed`` is
    ``alpha·outcome + (1 − alpha)·ProcessAcc``; ``strict`` is 1 only if verified correct;
    ``penalty`` is the reference's penalty-count reward. Golds given raw are converted under
    the GIL on every call (consecutive repeats of one object once); :func:`gold` converts a
    pool once, and a batch of prepared golds is verified about three times faster. ``golds``
    may also be the dataset's ``graph`` column as a pyarrow ``Array`` or ``ChunkedArray``
    (``table.column("graph")``): it is read through the Arrow C data interface without a
    copy, and each worker decodes its rows' graphs with the GIL released (the fastest form)."""

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``n`` samples, ``c`` correct (Chen et al. 2021)."""

def summarize(
    verdicts: Sequence[Verdict],
    problems: Sequence[Union[str, Mapping[str, Any]]],
    alpha: float = 0.2,
    ks: Optional[Sequence[int]] = None,
) -> dict[str, Any]:
    """The summary ``dagmath audit`` writes to summary.json: pass@k (VerifiedCorrect and
    answer-only) per split, op, template and mode, the failure taxonomy and mean rewards.
    ``problems[i]`` names the problem of ``verdicts[i]``: an id, or a dict (a dataset row) with
    ``id`` and optionally ``split``, ``op``, ``template``. ``ks=None``: powers of two up to the
    most samples per problem, and that number."""

def compose(
    op: int,
    template: str = "zoo",
    mode: Literal["forward", "reverse"] = "forward",
    seed: int = 0,
    distractors: str = "reference",
    split: str = "",
    templates: Optional[Union[str, PathLike[str]]] = None,
    format: TraceFormat = "full",
) -> dict[str, Any]:
    """One problem as a dataset row (the columns of a dagmath shard: id, split, op, template,
    mode, problem, question, solution, answer, prompt, completion, graph, n_nodes,
    n_distractors, depth), its solution and completion written in trace format ``format``.
    Same arguments, same row."""

def generate(
    recipe: Union[str, PathLike[str]],
    out: Union[str, PathLike[str]],
    threads: Optional[int] = None,
    seed: Optional[int] = None,
    resume: bool = False,
    force: bool = False,
    templates: Optional[Union[str, PathLike[str]]] = None,
) -> dict[str, Any]:
    """Write the dataset of a recipe (TOML) to ``out``, as ``dagmath generate --recipe`` does
    (byte-identical for the same recipe and seed); returns its manifest."""
