"""Rewards for GRPO on a *judge*: agreement of the judge's verdict with the gold verdict.

Pointwise (paper): r = (M − (ŝ − s)²) / M with M = (max − min)², so r ∈ [0, 1], 1 for the exact
gold score and 0 for the opposite end of the scale; an unparseable (or out-of-range) verdict gets
``invalid_reward`` (−1), below any valid answer.

Pairwise (paper): 1 if the judge picks the gold's choice, 0 if it picks wrong, −1 if invalid.
With ``require_both_orders`` a rollout earns 1 only if it is right *and* the rollout with the same
index for the same battle in the other order is right too (J1-style consistency). That needs both
orders in one generation batch: give rows a ``pair_id`` column (the battle) and put the two orders
next to each other in the dataset with ``shuffle_dataset: false`` and an even number of prompts
per generation batch. When a sibling is missing from the batch the rollout falls back to the
single-order reward and the share of such rollouts is logged as ``judge_reward/unpaired_rate``.

The parse function is passed in (the judge's own parser from ``judgelab.judges``), so this module
does not import ``judges/``. It is called as ``parse(text, finish_reason)`` and must read the
verdict from the completion text only, returning ``None`` when there is no valid verdict.

Truncated completions. A completion cut off by ``max_completion_length`` is invalid exactly as it
is when the judge is used (``judgelab.judges.parsing``: a cut-off answer counts only if its verdict
line is the last line), so a trace stopped after a mid-text ``Score: N`` earns ``invalid_reward``,
not a score. ``finish_reason`` is ``"length"`` when the completion's last token (TRL's
``completion_ids`` kwarg) is not an end-of-completion token, ``"stop"`` when it is — the same test
as TRL's ``completions/clipped_ratio``. The end-of-completion ids are bound by
``judgelab.training.grpo.train_grpo`` (``reward.bind_stop_token_ids(ids)``: the trainer's eos ids
and the pad id); unbound, or without ``completion_ids``, ``finish_reason`` is None (unknown).
``judge_reward/truncated_rate`` is logged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal

from judgelab.errors import ConfigError, DataError
from judgelab.rewards.trl_format import completion_text

PairwiseChoice = Literal["A", "B", "tie"]
ParseScore = Callable[[str, str | None], float | int | None]
ParseChoice = Callable[[str, str | None], PairwiseChoice | str | None]


def pointwise_judge_reward(
    predicted: float | None, gold: float, *, low: float, high: float, invalid_reward: float = -1.0
) -> float:
    """(M − (ŝ − s)²) / M, M = (high − low)²; ``invalid_reward`` if ŝ is None / NaN / out of range."""
    if not high > low:
        raise ConfigError(f"score range [{low}, {high}] is empty", "need high > low")
    if not low <= gold <= high:
        raise DataError(f"gold score {gold} is outside [{low}, {high}]")
    if predicted is None or math.isnan(predicted) or not low <= predicted <= high:
        return invalid_reward
    m = (high - low) ** 2
    return (m - (predicted - gold) ** 2) / m


def pairwise_judge_reward(
    predicted: str | None, gold: str, *, invalid_reward: float = -1.0
) -> float:
    """1 right, 0 wrong, ``invalid_reward`` when the verdict is missing or not A / B / tie."""
    if predicted not in ("A", "B", "tie"):
        return invalid_reward
    return 1.0 if predicted == gold else 0.0


def make_pointwise_judge_reward(
    parse: ParseScore,
    *,
    low: float = 0,
    high: float = 9,
    gold_key: str = "gold_score",
    invalid_reward: float = -1.0,
) -> Callable[..., list[float]]:
    """A TRL reward function: parse each completion, compare with the ``gold_key`` column."""

    stop_ids: set[int] = set()

    def judge_pointwise_reward(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float]:
        gold = _column(kwargs, gold_key, len(completions))
        finish = finish_reasons(kwargs, len(completions), stop_ids)
        rewards: list[float] = []
        invalid = 0
        for completion, g, fr in zip(completions, gold, finish):
            predicted = parse(completion_text(completion), fr)
            invalid += not _valid_score(predicted, low, high)
            rewards.append(
                pointwise_judge_reward(
                    None if predicted is None else float(predicted), float(g),
                    low=low, high=high, invalid_reward=invalid_reward,
                )
            )
        _log(kwargs, "judge_reward/invalid_rate", invalid / max(1, len(completions)))
        return rewards

    judge_pointwise_reward.bind_stop_token_ids = stop_ids.update  # type: ignore[attr-defined]
    return judge_pointwise_reward


def make_pairwise_judge_reward(
    parse: ParseChoice,
    *,
    gold_key: str = "gold_choice",
    invalid_reward: float = -1.0,
    require_both_orders: bool = False,
    pair_key: str = "pair_id",
) -> Callable[..., list[float]]:
    """A TRL reward function for pairwise verdicts (see the module doc for ``require_both_orders``).

    ``gold_key`` holds the gold choice *in this row's order* ("A", "B" or "tie").
    """

    stop_ids: set[int] = set()

    def judge_pairwise_reward(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float]:
        n = len(completions)
        gold = _column(kwargs, gold_key, n)
        finish = finish_reasons(kwargs, n, stop_ids)
        verdicts = [parse(completion_text(c), fr) for c, fr in zip(completions, finish)]
        rewards = [
            pairwise_judge_reward(v, str(g), invalid_reward=invalid_reward)
            for v, g in zip(verdicts, gold)
        ]
        _log(kwargs, "judge_reward/invalid_rate", sum(r == invalid_reward for r in rewards) / max(1, n))
        if not require_both_orders:
            return rewards
        return _both_orders(rewards, prompts, _column(kwargs, pair_key, n), kwargs)

    judge_pairwise_reward.bind_stop_token_ids = stop_ids.update  # type: ignore[attr-defined]
    return judge_pairwise_reward


def finish_reasons(kwargs: dict[str, Any], n: int, stop_ids: set[int]) -> list[str | None]:
    """Per completion ``"stop"`` / ``"length"`` from TRL's ``completion_ids`` (see the module doc);
    None for all when the ids or the end-of-completion tokens are not known. Logs the truncated share."""
    ids = kwargs.get("completion_ids")
    if ids is None or not stop_ids:
        return [None] * n
    ids = list(ids)
    if len(ids) != n:
        raise DataError(f"completion_ids has {len(ids)} rows for {n} completions")
    out: list[str | None] = ["stop" if len(row) and int(row[-1]) in stop_ids else "length" for row in ids]
    _log(kwargs, "judge_reward/truncated_rate", sum(r == "length" for r in out) / max(1, n))
    return out


def _both_orders(
    rewards: list[float], prompts: Sequence[Any], pair_ids: Sequence[Any], kwargs: dict[str, Any]
) -> list[float]:
    """1 only if this rollout and its same-index sibling in the other order are both right."""
    # Rollouts of one prompt share the prompt; the k-th rollout of each order is paired.
    order_of: dict[Any, list[str]] = defaultdict(list)  # pair_id -> distinct prompt keys, in order
    slots: dict[tuple[Any, str], list[int]] = defaultdict(list)  # (pair, prompt) -> row indices
    for i, (pid, prompt) in enumerate(zip(pair_ids, prompts)):
        key = repr(prompt)
        if key not in order_of[pid]:
            order_of[pid].append(key)
        slots[(pid, key)].append(i)
    if any(len(keys) > 2 for keys in order_of.values()):
        raise DataError(
            "require_both_orders: a pair_id has more than two distinct prompts in one batch",
            "pair_id must identify one battle, shown in exactly two orders",
        )
    out = list(rewards)
    unpaired = 0
    for pid, keys in order_of.items():
        if len(keys) < 2:
            unpaired += len(slots[(pid, keys[0])])
            continue
        a, b = slots[(pid, keys[0])], slots[(pid, keys[1])]
        if len(a) != len(b):
            raise DataError(
                f"require_both_orders: pair {pid!r} has {len(a)} and {len(b)} rollouts per order",
                "both orders need the same number of rollouts (num_generations)",
            )
        for i, j in zip(a, b):
            both_right = rewards[i] == 1.0 and rewards[j] == 1.0
            for k in (i, j):
                if rewards[k] in (0.0, 1.0):  # invalid stays invalid
                    out[k] = 1.0 if both_right else 0.0
    _log(kwargs, "judge_reward/unpaired_rate", unpaired / max(1, len(rewards)))
    return out


def _valid_score(predicted: float | None, low: float, high: float) -> bool:
    return predicted is not None and not math.isnan(float(predicted)) and low <= float(predicted) <= high


def _column(kwargs: dict[str, Any], key: str, n: int) -> list[Any]:
    if key not in kwargs:
        known = sorted(k for k in kwargs if k not in ("trainer_state", "log_metric", "log_extra"))
        raise DataError(
            f"the reward needs a '{key}' column in the GRPO prompt rows",
            f"columns present: {known}",
        )
    col = list(kwargs[key])
    if len(col) != n:
        raise DataError(f"column '{key}' has {len(col)} values for {n} completions")
    return col


def _log(kwargs: dict[str, Any], name: str, value: float) -> None:
    log_metric = kwargs.get("log_metric")
    if callable(log_metric):
        log_metric(name, value)


__all__ = [
    "PairwiseChoice",
    "ParseChoice",
    "ParseScore",
    "finish_reasons",
    "make_pairwise_judge_reward",
    "make_pointwise_judge_reward",
    "pairwise_judge_reward",
    "pointwise_judge_reward",
]
