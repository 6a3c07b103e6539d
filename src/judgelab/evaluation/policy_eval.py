"""Score held-out policy samples with the proxy, the gold and any other judges (L3).

Used twice, with the same code: by ``train-policy``'s tracking (the callback samples, this scores)
and by ``eval-policy`` (``evaluate_policy_checkpoint`` loads a checkpoint, samples with
``judgelab.training.heldout`` and scores here). Records (docs/records.md):

- ``tracking.jsonl``, schema ``judgelab.tracking/v1``: one per evaluated step::

    {"schema", "step", "metrics": {"reward/proxy", "reward/gold", "reward/proxy_se",
     "reward/gold_se", "reward/gold@proxy_prompts", "reward/gold@proxy_prompts_se", "proxy/n",
     "kl/policy_init", "length/mean", "judge/invalid_rate", "judge/readout_failure_rate",
     "gold/invalid_rate", ...}, "per_prompt": {"prompt_ids", "proxy", "gold", ...}}

  ``reward/gold@proxy_prompts`` is the gold over the first ``proxy/n`` samples — the prompts the
  proxy scored — so proxy and gold can be compared on the same prompts when ``proxy_limit`` scores
  the proxy on fewer prompts than the gold (equal to ``reward/gold`` otherwise).

  ``kl/policy_init`` is the KL to the initial policy in nats *per response* (docs/records.md:
  the report plots gold against its square root): the per-token KL summed over each response,
  averaged over the responses; ``kl/policy_init_token`` is the mean per token (see
  ``judgelab.training.heldout`` for the estimator); both ``null`` when the KL is off. Extra judges
  add ``reward/<name>``, ``reward/<name>_se``, ``<name>/invalid_rate`` and ``per_prompt[<name>]``.
- ``eval_samples.jsonl``, schema ``judgelab.eval_sample/v1``: one per (step, prompt) with the
  response, its proxy and gold values, the gold's reasoning, its token count and finish reason.

Values: a judge's value for a sample is ``Judgement.reward`` (expected score when read out, else
the parsed score — or ``null`` when the read-out failed and the judge's ``readout_failure`` is
``invalid``, counted in ``judge/readout_failure_rate``); an invalid judgement is ``null`` — never replaced here (the training reward's
invalid policy does not apply to tracking). Means and standard errors (sample std / √n) are over
the valid values; ``*/invalid_rate`` says how many were left out. A mean of no values, or an SE
of fewer than two, is ``null``.

A *pairwise* proxy has no score for a single response: its tracking value is the win value of the
sample against the initial policy's sample for the same prompt (the step-0 response, judged in
both orders; ``judgelab.rewards.policy_reward.battle_win_value``), so step 0 is 0.5 by
construction and "proxy up" means "preferred over the initial policy".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from judgelab.errors import DataError
from judgelab.judges.ensemble import EnsembleJudge
from judgelab.judges.judge import Judge
from judgelab.judges.types import PairwiseItem, PointwiseItem
from judgelab.metrics import compute_mean_se
from judgelab.rewards.policy_reward import (
    JudgeLoop,
    PointwiseScorer,
    battle_win_value,
    readout_failures,
)

logger = logging.getLogger(__name__)

TRACKING_SCHEMA = "judgelab.tracking/v1"
EVAL_SAMPLE_SCHEMA = "judgelab.eval_sample/v1"
GOLD_ON_PROXY_PROMPTS = "reward/gold@proxy_prompts"
ProxyKind = Literal["pointwise", "pairwise"]


@dataclass(frozen=True)
class PromptInfo:
    """What the judges need about a held-out prompt."""

    prompt_id: str
    instruction: str
    rubric: str | None = None


@dataclass(frozen=True)
class SampleToScore:
    """One held-out response to score (from ``judgelab.training.heldout.GeneratedSample``)."""

    prompt_id: str
    response: str
    n_tokens: int
    finish_reason: str


@dataclass
class TrackingPoint:
    """One evaluated step: metrics, per-prompt values, and the sample rows."""

    step: int
    metrics: dict[str, float | None]
    per_prompt: dict[str, list[Any]]
    samples: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"schema": TRACKING_SCHEMA, "step": self.step, "metrics": self.metrics,
                "per_prompt": self.per_prompt}


def step0_baseline(rows: Iterable[Mapping[str, Any]]) -> dict[str, str] | None:
    """A pairwise proxy's baseline: the initial policy's response per prompt, from eval-sample rows
    (``judgelab.eval_sample/v1``) at step 0; None when there are none."""
    base = {str(r["prompt_id"]): str(r["response"]) for r in rows if int(r["step"]) == 0}
    return base or None


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class PolicyScorer:
    """Scores held-out samples with a proxy (pointwise scorer or pairwise judge), the gold and extras."""

    def __init__(
        self,
        *,
        prompts: Mapping[str, PromptInfo],
        proxy: PointwiseScorer | Judge,
        proxy_kind: ProxyKind,
        gold: Judge,
        extra: Mapping[str, Judge | EnsembleJudge] | None = None,
        loop: JudgeLoop | None = None,
        proxy_limit: int | None = None,
    ) -> None:
        """``proxy_limit``: score the proxy on only the first N samples of each call (their
        ``per_prompt.proxy`` beyond N is null and ``proxy/n`` says how many were scored); the gold
        and the extra judges score every sample."""
        if proxy_kind == "pairwise" and not isinstance(proxy, Judge):
            raise TypeError("a pairwise proxy must be a Judge")
        if gold.protocol != "pointwise":
            raise DataError(f"the gold judge {gold.name!r} must be pointwise for tracking, not {gold.protocol}",
                            "give the gold a pointwise template (pointwise-v1)")
        self.prompts = dict(prompts)
        self.proxy = proxy
        self.proxy_kind = proxy_kind
        self.gold = gold
        self.extra = dict(extra or {})
        for name in self.extra:
            if name in ("proxy", "gold"):
                raise DataError(f"extra judge name {name!r} is reserved", "rename the extra judge")
        self.loop = loop
        if proxy_limit is not None and proxy_limit < 1:
            raise ValueError(f"proxy_limit must be >= 1, not {proxy_limit}")
        self.proxy_limit = proxy_limit

    def _info(self, prompt_id: str) -> PromptInfo:
        try:
            return self.prompts[prompt_id]
        except KeyError:
            raise DataError(f"held-out sample for unknown prompt id {prompt_id!r}") from None

    def score(
        self,
        step: int,
        samples: Sequence[SampleToScore],
        *,
        kl_per_token: float | None = None,
        kl_per_sequence: float | None = None,
        baseline: Mapping[str, str] | None = None,
    ) -> TrackingPoint:
        """Score ``samples`` (blocking; judge calls run on the ``JudgeLoop`` when given)."""
        import asyncio

        coro = self.score_async(step, samples, kl_per_token=kl_per_token,
                                kl_per_sequence=kl_per_sequence, baseline=baseline)
        return self.loop.run(coro) if self.loop is not None else asyncio.run(coro)

    async def score_async(
        self,
        step: int,
        samples: Sequence[SampleToScore],
        *,
        kl_per_token: float | None = None,
        kl_per_sequence: float | None = None,
        baseline: Mapping[str, str] | None = None,
    ) -> TrackingPoint:
        import asyncio

        infos = [self._info(s.prompt_id) for s in samples]
        items = [PointwiseItem(i.instruction, s.response, rubric=i.rubric) for i, s in zip(infos, samples)]
        n_proxy = len(samples) if self.proxy_limit is None else min(self.proxy_limit, len(samples))
        proxy_task = self._proxy_values(samples[:n_proxy], infos[:n_proxy], baseline)
        gold_task = self.gold.score_pointwise(items)
        extra_tasks = [j.score_pointwise(items) for j in self.extra.values()]
        (proxy_scored, readout_failure_rate), gold_js, *extra_js = await asyncio.gather(
            proxy_task, gold_task, *extra_tasks)
        proxy_vals = list(proxy_scored) + [None] * (len(samples) - n_proxy)
        gold_vals = [j.reward if j.parsed else None for j in gold_js]
        metrics: dict[str, float | None] = {}
        per_prompt: dict[str, list[Any]] = {
            "prompt_ids": [s.prompt_id for s in samples], "proxy": proxy_vals, "gold": gold_vals,
        }
        m, se, bad = compute_mean_se(proxy_scored)
        metrics.update({"reward/proxy": m, "reward/proxy_se": se, "judge/invalid_rate": bad, "proxy/n": n_proxy,
                        "judge/readout_failure_rate": readout_failure_rate})
        m, se, bad = compute_mean_se(gold_vals)
        metrics.update({"reward/gold": m, "reward/gold_se": se, "gold/invalid_rate": bad})
        # the gold on exactly the prompts the proxy scored: what every proxy-gold comparison uses
        m, se, _ = compute_mean_se(gold_vals[:n_proxy])
        metrics.update({GOLD_ON_PROXY_PROMPTS: m, GOLD_ON_PROXY_PROMPTS + "_se": se})
        extra_vals: dict[str, list[float | None]] = {}
        for name, js in zip(self.extra, extra_js):
            vals = [j.reward if j.parsed else None for j in js]
            extra_vals[name] = vals
            per_prompt[name] = vals
            m, se, bad = compute_mean_se(vals)
            metrics.update({f"reward/{name}": m, f"reward/{name}_se": se, f"{name}/invalid_rate": bad})
        metrics["kl/policy_init"] = _finite(kl_per_sequence)
        metrics["kl/policy_init_token"] = _finite(kl_per_token)
        metrics["length/mean"] = (sum(s.n_tokens for s in samples) / len(samples)) if samples else None
        rows = []
        for k, (s, info) in enumerate(zip(samples, infos)):
            row: dict[str, Any] = {
                "schema": EVAL_SAMPLE_SCHEMA,
                "step": step,
                "prompt_id": s.prompt_id,
                "prompt": info.instruction,
                "response": s.response,
                "proxy": proxy_vals[k],
                "gold": gold_vals[k],
                "gold_reasoning": gold_js[k].reasoning,
                "n_tokens": s.n_tokens,
                "finish_reason": s.finish_reason,
            }
            if extra_vals:
                row["extra"] = {name: vals[k] for name, vals in extra_vals.items()}
            rows.append(row)
        return TrackingPoint(step=step, metrics=metrics, per_prompt=per_prompt, samples=rows)

    async def _proxy_values(
        self, samples: Sequence[SampleToScore], infos: Sequence[PromptInfo], baseline: Mapping[str, str] | None
    ) -> tuple[list[float | None], float | None]:
        """The proxy's value per sample, and (pointwise) its read-out failure rate."""
        if self.proxy_kind == "pointwise":
            items = [PointwiseItem(i.instruction, s.response, rubric=i.rubric) for i, s in zip(infos, samples)]
            results = await self.proxy.score_pointwise(items)  # type: ignore[union-attr]
            failed, judged = readout_failures(results)
            return ([r.reward if r.parsed and r.reward is not None else None for r in results],
                    failed / judged if judged else None)
        if baseline is None:
            raise DataError("a pairwise proxy needs the initial policy's samples (step 0) as the baseline",
                            "track step 0 first")
        out: list[float | None] = [None] * len(samples)
        todo: list[int] = []
        items: list[PairwiseItem] = []
        for k, (s, info) in enumerate(zip(samples, infos)):
            if s.prompt_id not in baseline:
                raise DataError(f"no step-0 sample for prompt {s.prompt_id!r} to compare with")
            base = baseline[s.prompt_id]
            if base == s.response:
                out[k] = 0.5
                continue
            todo.append(k)
            items.append(PairwiseItem(info.instruction, s.response, base, rubric=info.rubric))
        if items:
            judge: Judge = self.proxy  # type: ignore[assignment]  # checked in __init__
            battles = await judge.score_pairwise(items, both_orders=True)
            for k, b in zip(todo, battles):
                out[k] = battle_win_value(b)
        return out, None


def evaluate_policy_checkpoint(
    model_path: str,
    step: int,
    *,
    prompts: Sequence[Any],
    sampling: Any,
    scorer: PolicyScorer,
    initial_model: str,
    reference: Any | None,
    chat_template_kwargs: Mapping[str, Any] | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    baseline: Mapping[str, str] | None = None,
) -> TrackingPoint:
    """Load ``model_path`` (a checkpoint or the initial model), sample ``prompts``, KL, score.

    ``prompts``: ``judgelab.training.heldout.HeldOutPrompt``s; ``sampling``: ``HeldOutSampling``;
    ``reference``: a ``ReferencePolicy`` for the KL, or None to skip it.
    """
    import gc

    from judgelab.training.heldout import generate_heldout, load_policy_checkpoint, policy_kl

    model, tok = load_policy_checkpoint(
        model_path, initial_model=initial_model, revision=revision, trust_remote_code=trust_remote_code
    )
    try:
        gen = generate_heldout(model, tok, prompts, sampling, chat_template_kwargs=chat_template_kwargs)
        kl = policy_kl(model, reference, gen, batch_size=sampling.kl_batch_size) if reference is not None else None
    finally:
        del model
        gc.collect()
    samples = [SampleToScore(g.prompt_id, g.text, g.n_tokens, g.finish_reason) for g in gen]
    return scorer.score(
        step, samples,
        kl_per_token=None if kl is None else kl.per_token,
        kl_per_sequence=None if kl is None else kl.per_sequence,
        baseline=baseline if baseline is not None else (
            {s.prompt_id: s.response for s in samples} if step == 0 else None
        ),
    )


__all__ = [
    "EVAL_SAMPLE_SCHEMA",
    "GOLD_ON_PROXY_PROMPTS",
    "TRACKING_SCHEMA",
    "PolicyScorer",
    "PromptInfo",
    "ProxyKind",
    "SampleToScore",
    "TrackingPoint",
    "compute_mean_se",
    "evaluate_policy_checkpoint",
    "step0_baseline",
]
