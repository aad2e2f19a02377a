"""dagmath's verifier as a TRL reward function.

``GRPOTrainer(reward_funcs=...)`` calls a reward function as
``f(prompts=..., completions=..., completion_ids=..., **columns)``, where every other column
of the training dataset arrives as a keyword argument holding one value per completion. A
dagmath dataset (or RL pool) has a ``graph`` column, so::

    from trl import GRPOTrainer
    from dagmath.integrations.trl import reward

    trainer = GRPOTrainer(model=..., reward_funcs=reward, train_dataset=dataset)

Completions may be strings (standard format) or chat message lists (conversational format:
the last message's ``content`` is scored). :func:`make_reward` builds one with another reward
kind, outcome weight or rule. When the dataset has an ``id`` column (dagmath's do), each
problem's gold is converted once and kept, keyed by id.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence

import dagmath

# Golds read once per problem id: a GRPO run scores every problem many times (its group, then
# every epoch), and a prepared gold verifies about three times faster than a raw graph.
_CACHE_LIMIT = 1 << 17


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or a chat message list's last ``content``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and completion:
        last = completion[-1]
        if isinstance(last, dict) and isinstance(last.get("content"), str):
            return last["content"]
    raise ValueError(
        f"completion {completion!r:.80} is neither a str nor a list of chat messages"
    )


def make_reward(
    kind: str = "mixed",
    alpha: float = 0.2,
    rule: str = "strict",
    column: str = "graph",
    format: str = "full",
) -> Callable[..., List[float]]:
    """A TRL reward function scoring with :func:`dagmath.rewards`: ``kind`` is ``outcome``,
    ``process``, ``mixed`` (``alpha·outcome + (1 − alpha)·ProcessAcc``, the default),
    ``strict`` or ``penalty``; ``column`` names the dataset column holding the gold (its
    ``graph``, or reference-format records); ``format`` is the trace format the model writes
    (the training dataset's ``trace_format``: ``full``, ``terse``, ``long``, ``answer_only``)."""
    dagmath.rewards([], [], kind=kind, alpha=alpha, rule=rule, format=format)  # refuse bad options now
    cache: Dict[str, dagmath.Gold] = {}

    def prepared(ids: Sequence[Any], golds: Sequence[Any]) -> List[Any]:
        """The golds, read once per problem id (ids are canonical: one id, one graph)."""
        out = []
        for i, g in zip(ids, golds):
            p = cache.get(i)
            if p is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                p = cache[i] = dagmath.gold(g)
            out.append(p)
        return out

    def reward_fn(
        prompts: Optional[Sequence[Any]] = None,
        completions: Optional[Sequence[Any]] = None,
        **kw: Any,
    ) -> List[float]:
        golds = kw.get(column)
        if golds is None:
            raise ValueError(
                f"dagmath reward: no `{column}` column among the dataset's columns "
                f"{sorted(k for k in kw if k not in ('trainer_state', 'log_extra', 'log_metric'))}"
            )
        texts = [completion_text(c) for c in (completions or [])]
        ids = kw.get("id")
        if ids is not None and len(ids) == len(golds):
            golds = prepared(ids, golds)
        return dagmath.rewards(texts, golds, kind=kind, alpha=alpha, rule=rule, format=format)

    reward_fn.__name__ = f"dagmath_{kind}"
    return reward_fn


_default = make_reward()


def reward(prompts: Sequence[Any], completions: Sequence[Any], graph: Sequence[Any], **kw: Any) -> List[float]:
    """The mixed reward (0.2·outcome + 0.8·ProcessAcc, rule ``strict``) of each completion
    against its row's ``graph``, in TRL's reward-function calling convention. With an ``id``
    column (dagmath datasets have one) each problem's gold is read once and kept."""
    return _default(prompts, completions, graph=graph, **kw)


reward.__name__ = "dagmath_mixed"
