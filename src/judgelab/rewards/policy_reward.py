"""Rewards for GRPO on a *policy*: TRL reward callables built from proxy judges (L3).

Three kinds (``PolicyRewardSpec``, discriminated by ``kind``):

- ``pointwise``: the proxy judge's score of each rollout, ``Judgement.reward`` = the expected
  score Σ x·p(x) over the valid score tokens when the judge reads it out (``readout:
  expected_only`` for non-reasoning hf judges, ``text+expected`` for reasoning judges, which first
  sample their reasoning — the paper's judge sampling is temperature 0.7, top-k 20, top-p 0.95,
  set in the judge's ``sampling``), else the parsed score;
- ``pairwise``: each rollout's average win rate against the other rollouts of its group (the
  rollouts of one prompt), every pair judged in both orders. Per pair, the win value of A is the
  mean over the two orders of 1 (A preferred), 0 (B preferred) or, for the five-level arena
  grammar, 1 / 1 / 0.5 / 0 / 0 for A>>B / A>B / A=B / B>A / B>>A; a position-inconsistent pair
  thus counts 0.5. A pair with an invalid verdict in either order is left out of both rollouts'
  averages. Two byte-identical rollouts are not sent to the judge: their pair counts 0.5 each
  (what a position-consistent judge must say). Groups are the contiguous runs of equal
  ``prompt_id`` (TRL keeps a group's rollouts together on one process when the per-device
  generation batch is a multiple of ``num_generations``, which ``GRPOTrainSpec`` requires);
- ``ensemble``: several pointwise judges combined per rollout by mean, min or mean − λ·std
  (``judgelab.judges.ensemble``; an ensemble is invalid when fewer than ``min_valid`` members are
  valid).

Invalid judge output is explicit (``invalid``): ``penalty`` gives the rollout
``invalid_penalty`` (default 0, the bottom of the 0–9 and win-rate scales); ``drop`` returns
``None``, which TRL turns into NaN: the rollout is left out of its group's baseline and gets zero
advantage. A pointwise rollout is invalid when its verdict did not parse (or has no score); a
pairwise rollout when none of its pairs got a valid verdict.

Logged through TRL's ``log_metric`` kwarg each step (averaged per logging step by TRL):
``judge/invalid_rate`` (share of invalid judgements: rollouts for pointwise / ensemble, judged
orders for pairwise), ``judge/readout_failure_rate`` (pointwise / ensemble: share of judgements
whose verdict parsed but whose expected-score read-out failed — invalid under the judge's default
``readout_failure: invalid``, the integer verdict under ``verdict``; so a run never mixes the two
scales unlogged), ``reward/invalid_rate`` (share of rollouts the invalid policy applied to),
``judge/<member>/invalid_rate`` for ensemble members, ``judge/seconds`` (wall time of the judge
call). TRL itself logs ``rewards/<name>/mean`` and ``/std``.

Judge calls run on a ``JudgeLoop`` when one is given: one event loop on its own thread for the
whole run, so a server backend's HTTP clients live in a single loop although TRL awaits the
reward on its own loop and the tracking callback calls the judges from the main thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import Field, model_validator

from judgelab.config.specs import StrictModel
from judgelab.errors import ConfigError, DataError
from judgelab.judges.cache import JudgementCache
from judgelab.judges.ensemble import EnsembleJudge, EnsembleSpec
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.templates import get_template
from judgelab.judges.types import Battle, PairwiseItem, PointwiseItem
from judgelab.rewards.trl_format import completion_text

logger = logging.getLogger(__name__)

T = TypeVar("T")
InvalidRewardPolicy = Literal["penalty", "drop"]
ARENA_WIN_VALUE: dict[str, float] = {"A>>B": 1.0, "A>B": 1.0, "A=B": 0.5, "B>A": 0.0, "B>>A": 0.0}
PAIR_WIN_VALUE: dict[str, float] = {"A": 1.0, "B": 0.0}


# ------------------------------------------------------------------------------------ config
class _RewardSpecBase(StrictModel):
    name: str = Field(
        "proxy", pattern=r"^[A-Za-z0-9_.-]+$", description="reward name in TRL's logs (rewards/<name>/mean)"
    )
    invalid: InvalidRewardPolicy = Field(
        "penalty", description="penalty: invalid rollouts get invalid_penalty; drop: no reward (zero advantage)"
    )
    invalid_penalty: float = Field(0.0, description="reward of an invalid rollout under invalid: penalty")


class PointwiseRewardSpec(_RewardSpecBase):
    """Reward = one pointwise judge's (expected) score of each rollout."""

    kind: Literal["pointwise"] = "pointwise"
    judge: JudgeSpec

    @model_validator(mode="after")
    def _pointwise(self) -> PointwiseRewardSpec:
        protocol = get_template(self.judge.template, self.judge.mode).protocol
        if protocol != "pointwise":
            raise ValueError(
                f"a pointwise reward needs a pointwise judge template; {self.judge.template!r} is "
                f"{protocol}: use kind: pairwise for it, or a pointwise template"
            )
        return self


class PairwiseRewardSpec(_RewardSpecBase):
    """Reward = average win rate against the other rollouts of the group (both orders)."""

    kind: Literal["pairwise"] = "pairwise"
    judge: JudgeSpec

    @model_validator(mode="after")
    def _pairwise(self) -> PairwiseRewardSpec:
        protocol = get_template(self.judge.template, self.judge.mode).protocol
        if protocol not in ("pairwise", "arena"):
            raise ValueError(
                f"a pairwise reward needs a pairwise or arena judge template; {self.judge.template!r} "
                f"is {protocol}: set judge.template: pairwise-v1"
            )
        return self


class EnsembleRewardSpec(_RewardSpecBase):
    """Reward = pointwise judges combined per rollout (mean / min / mean − λ·std)."""

    kind: Literal["ensemble"] = "ensemble"
    ensemble: EnsembleSpec

    @model_validator(mode="after")
    def _members_pointwise(self) -> EnsembleRewardSpec:
        for i, m in enumerate(self.ensemble.members):
            protocol = get_template(m.template, m.mode).protocol
            if protocol != "pointwise":
                raise ValueError(f"ensemble member {i} uses the {protocol} template {m.template!r}; "
                                 "members must be pointwise judges")
        return self


PolicyRewardSpec = Annotated[
    PointwiseRewardSpec | PairwiseRewardSpec | EnsembleRewardSpec, Field(discriminator="kind")
]


# ------------------------------------------------------------------------------------ event loop
class JudgeLoop:
    """One asyncio loop on a daemon thread; judge coroutines from any thread run on it."""

    def __init__(self, name: str = "judgelab-judges") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it (from a thread other than the loop's)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("JudgeLoop.run called from its own thread; await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the loop from another running loop (or directly on this one)."""
        if threading.current_thread() is self._thread:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def close_judges(loop: JudgeLoop, judges: Sequence[Any], cache: JudgementCache | None = None) -> None:
    """Close every judge's backend on ``loop`` (where their clients live), then the loop and the cache."""

    async def aclose_all() -> None:
        await asyncio.gather(*(j.aclose() for j in judges))

    try:
        loop.run(aclose_all())
    finally:
        loop.close()
        if cache is not None:
            cache.close()


async def _on(loop: JudgeLoop | None, coro: Coroutine[Any, Any, T]) -> T:
    return await (loop.run_async(coro) if loop is not None else coro)


# ------------------------------------------------------------------------------------ building
class PointwiseScorer(Protocol):
    """A ``Judge`` or ``EnsembleJudge``: results carry ``.parsed`` and ``.reward``."""

    async def score_pointwise(self, items: Sequence[PointwiseItem]) -> Sequence[Any]: ...


def build_reward_judge(
    spec: PointwiseRewardSpec | PairwiseRewardSpec | EnsembleRewardSpec,
    *,
    cache: JudgementCache | None = None,
    backends: Mapping[int, Any] | None = None,
) -> Judge | EnsembleJudge:
    """The judge behind a reward spec (``backends``: optional pre-built backends by member index)."""
    backends = backends or {}
    if isinstance(spec, EnsembleRewardSpec):
        e = spec.ensemble
        members = [Judge(m, backend=backends.get(i), cache=cache) for i, m in enumerate(e.members)]
        return EnsembleJudge(members, e.aggregate, e.lam, e.min_valid)
    return Judge(spec.judge, backend=backends.get(0), cache=cache)


def make_policy_reward(
    spec: PointwiseRewardSpec | PairwiseRewardSpec | EnsembleRewardSpec,
    judge: Judge | EnsembleJudge,
    *,
    loop: JudgeLoop | None = None,
) -> PointwisePolicyReward | PairwisePolicyReward:
    """The TRL reward callable for ``spec`` around an already-built ``judge``."""
    if isinstance(spec, PairwiseRewardSpec):
        if not isinstance(judge, Judge):
            raise ConfigError("a pairwise reward needs a single Judge, not an ensemble")
        return PairwisePolicyReward(judge, name=spec.name, invalid=spec.invalid,
                                    invalid_penalty=spec.invalid_penalty, loop=loop)
    return PointwisePolicyReward(judge, name=spec.name, invalid=spec.invalid,
                                 invalid_penalty=spec.invalid_penalty, loop=loop)


# ------------------------------------------------------------------------------------ pure parts
def apply_invalid_policy(
    values: Sequence[float | None], invalid: InvalidRewardPolicy, penalty: float
) -> list[float | None]:
    """``None`` (invalid) → ``penalty`` or stays ``None`` (drop); valid values unchanged."""
    if invalid == "drop":
        return list(values)
    return [penalty if v is None else float(v) for v in values]


def contiguous_groups(keys: Sequence[Any]) -> list[list[int]]:
    """Indices of the runs of equal consecutive keys: ``[a, a, b, b, a]`` → ``[[0, 1], [2, 3], [4]]``."""
    groups: list[list[int]] = []
    for i, k in enumerate(keys):
        if groups and keys[groups[-1][0]] == k:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def battle_win_value(battle: Battle) -> float | None:
    """Win value of A (caller's frame) averaged over the judged orders; None if any order is invalid."""
    protocol = battle.first.verdict.protocol
    table = PAIR_WIN_VALUE if protocol == "pairwise" else ARENA_WIN_VALUE
    choices = [battle.first_choice] if battle.second is None else [battle.first_choice, battle.second_choice]
    if any(c is None or c not in table for c in choices):
        return None
    return sum(table[c] for c in choices) / len(choices)  # type: ignore[index]


def group_win_rates(n: int, pair_values: Mapping[tuple[int, int], float | None]) -> list[float | None]:
    """Average win rate of each of ``n`` rollouts from ``{(i, j): win value of i over j}`` (i < j).

    Rollout j's value in pair (i, j) is ``1 − v``. Pairs valued ``None`` are skipped; a rollout
    without any valid pair gets ``None``.
    """
    sums = [0.0] * n
    counts = [0] * n
    for (i, j), v in pair_values.items():
        if not 0 <= i < j < n:
            raise ValueError(f"pair {(i, j)} is not i < j < {n}")
        if v is None:
            continue
        sums[i] += v
        sums[j] += 1.0 - v
        counts[i] += 1
        counts[j] += 1
    return [s / c if c else None for s, c in zip(sums, counts)]


def prompt_texts(prompts: Sequence[Any], kwargs: Mapping[str, Any]) -> list[str]:
    """The instruction each rollout answers: the ``instruction`` column, else the last user turn."""
    if "instruction" in kwargs:
        col = list(kwargs["instruction"])
        if len(col) != len(prompts):
            raise DataError(f"column 'instruction' has {len(col)} values for {len(prompts)} rollouts")
        return [str(x) for x in col]
    out = []
    for p in prompts:
        if isinstance(p, str):
            out.append(p)
            continue
        users = [m for m in p if isinstance(m, Mapping) and m.get("role") == "user"]
        if not users:
            raise DataError("a GRPO prompt has no user message to judge the rollout against")
        out.append(completion_text([users[-1]]))
    return out


def _optional_column(kwargs: Mapping[str, Any], key: str, n: int) -> list[Any]:
    if key not in kwargs:
        return [None] * n
    col = list(kwargs[key])
    if len(col) != n:
        raise DataError(f"column '{key}' has {len(col)} values for {n} rollouts")
    return col


def _logger(kwargs: Mapping[str, Any]) -> Callable[[str, float], None]:
    f = kwargs.get("log_metric")
    return f if callable(f) else (lambda name, value: None)


# ------------------------------------------------------------------------------------ callables
class _PolicyRewardBase:
    """Shared state: name (TRL's reward name), invalid policy, cumulative counts."""

    def __init__(self, *, name: str, invalid: InvalidRewardPolicy, invalid_penalty: float,
                 loop: JudgeLoop | None) -> None:
        self.__name__ = name  # TRL names the reward (rewards/<name>/mean) after __name__
        self.invalid: InvalidRewardPolicy = invalid
        self.invalid_penalty = invalid_penalty
        self.loop = loop
        self.n_rollouts = 0
        self.n_invalid_rollouts = 0

    @property
    def invalid_rate(self) -> float:
        return self.n_invalid_rollouts / self.n_rollouts if self.n_rollouts else 0.0

    def _finish(self, values: list[float | None], log: Callable[[str, float], None]) -> list[float | None]:
        n_bad = sum(v is None for v in values)
        self.n_rollouts += len(values)
        self.n_invalid_rollouts += n_bad
        log("reward/invalid_rate", n_bad / max(1, len(values)))
        return apply_invalid_policy(values, self.invalid, self.invalid_penalty)


class PointwisePolicyReward(_PolicyRewardBase):
    """TRL reward: the (expected) score of each rollout from a ``Judge`` or ``EnsembleJudge``."""

    def __init__(self, judge: PointwiseScorer, *, name: str = "proxy", invalid: InvalidRewardPolicy = "penalty",
                 invalid_penalty: float = 0.0, loop: JudgeLoop | None = None) -> None:
        super().__init__(name=name, invalid=invalid, invalid_penalty=invalid_penalty, loop=loop)
        self.judge = judge

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        if len(prompts) != n:
            raise DataError(f"{len(prompts)} prompts for {n} completions")
        log = _logger(kwargs)
        items = [
            PointwiseItem(instruction, completion_text(c), rubric=r)
            for instruction, c, r in zip(prompt_texts(prompts, kwargs), completions,
                                         _optional_column(kwargs, "rubric", n))
        ]
        t0 = time.perf_counter()
        results = await _on(self.loop, _score(self.judge, items))
        log("judge/seconds", time.perf_counter() - t0)
        values: list[float | None] = []
        for r in results:
            values.append(r.reward if r.parsed and r.reward is not None else None)
        log("judge/invalid_rate", sum(v is None for v in values) / max(1, n))
        failed, judged = readout_failures(results)
        log("judge/readout_failure_rate", failed / max(1, judged))
        if isinstance(self.judge, EnsembleJudge):
            for m, member in enumerate(self.judge.judges):
                bad = sum(not r.members[m].verdict.parsed for r in results)
                log(f"judge/{member.name}/invalid_rate", bad / max(1, n))
        return self._finish(values, log)


def readout_failures(results: Sequence[Any]) -> tuple[int, int]:
    """(parsed verdicts whose expected-score read-out failed, judgements) over ``Judgement``s or the
    members of ``EnsembleJudgement``s."""
    judgements = [m for r in results for m in getattr(r, "members", [r])]
    return sum(bool(getattr(j, "readout_failed", False)) for j in judgements), len(judgements)


async def _score(judge: PointwiseScorer, items: list[PointwiseItem]) -> Sequence[Any]:
    return await judge.score_pointwise(items)


class PairwisePolicyReward(_PolicyRewardBase):
    """TRL reward: each rollout's average win rate over the other rollouts of its group."""

    def __init__(self, judge: Judge, *, name: str = "proxy", invalid: InvalidRewardPolicy = "penalty",
                 invalid_penalty: float = 0.0, loop: JudgeLoop | None = None) -> None:
        super().__init__(name=name, invalid=invalid, invalid_penalty=invalid_penalty, loop=loop)
        if judge.protocol not in ("pairwise", "arena"):
            raise ConfigError(f"judge {judge.name!r} uses a {judge.protocol} template",
                              "a pairwise reward needs a pairwise or arena template")
        self.judge = judge

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        if len(prompts) != n:
            raise DataError(f"{len(prompts)} prompts for {n} completions")
        log = _logger(kwargs)
        texts = [completion_text(c) for c in completions]
        instructions = prompt_texts(prompts, kwargs)
        rubrics = _optional_column(kwargs, "rubric", n)
        keys = list(kwargs["prompt_id"]) if "prompt_id" in kwargs else instructions
        groups = contiguous_groups(keys)
        pairs: list[tuple[int, int, int]] = []  # (group, local a, local b) sent to the judge
        items: list[PairwiseItem] = []
        group_pairs: list[dict[tuple[int, int], float | None]] = [{} for _ in groups]
        for g, idx in enumerate(groups):
            for a in range(len(idx)):
                for b in range(a + 1, len(idx)):
                    i, j = idx[a], idx[b]
                    if texts[i] == texts[j]:
                        group_pairs[g][(a, b)] = 0.5
                        continue
                    pairs.append((g, a, b))
                    items.append(PairwiseItem(instructions[i], texts[i], texts[j], rubric=rubrics[i]))
        t0 = time.perf_counter()
        battles = await _on(self.loop, self.judge.score_pairwise(items, both_orders=True)) if items else []
        log("judge/seconds", time.perf_counter() - t0)
        n_orders = sum(1 + (b.second is not None) for b in battles)
        n_bad_orders = sum((not b.first.verdict.parsed) + (b.second is not None and not b.second.verdict.parsed)
                           for b in battles)
        log("judge/invalid_rate", n_bad_orders / n_orders if n_orders else 0.0)
        for (g, a, b), battle in zip(pairs, battles):
            group_pairs[g][(a, b)] = battle_win_value(battle)
        values: list[float | None] = [None] * n
        for g, idx in enumerate(groups):
            if len(idx) < 2:
                logger.warning("pairwise reward: a group of one rollout (prompt %r) has nothing to compare",
                               keys[idx[0]])
                continue
            for local, v in enumerate(group_win_rates(len(idx), group_pairs[g])):
                values[idx[local]] = v
        return self._finish(values, log)

__all__ = [
    "ARENA_WIN_VALUE",
    "EnsembleRewardSpec",
    "InvalidRewardPolicy",
    "JudgeLoop",
    "PairwisePolicyReward",
    "PairwiseRewardSpec",
    "PointwisePolicyReward",
    "PointwiseRewardSpec",
    "PointwiseScorer",
    "PolicyRewardSpec",
    "apply_invalid_policy",
    "battle_win_value",
    "build_reward_judge",
    "close_judges",
    "contiguous_groups",
    "group_win_rates",
    "make_policy_reward",
    "prompt_texts",
    "readout_failures",
]
