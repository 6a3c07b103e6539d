"""``Judge`` = template + backend + parser (+ cache), and its config schema ``JudgeSpec`` (L2).

Usage::

    judge = Judge(JudgeSpec(backend=..., template="pointwise-v1", readout="text+expected"))
    judgements = await judge.score_pointwise([PointwiseItem(instruction, response)])
    battles = await judge.score_pairwise([PairwiseItem(instruction, a, b)], both_orders=True)
    rubrics = await judge.write_rubrics([instruction])          # template rubric-gen-v1

One call = one batch: cache look-up for all items, one ``complete_many`` for the misses (the hf
backend batches them, the openai backend fans them out under its concurrency cap), parse, the
optional distribution read-out, one cache write. The per-call overhead is a few dict and hash
operations per item, so the policy-training reward can await it directly.

Read-out (``readout``) for pointwise templates:

- ``text``: generate, parse ``Score: N``. No expected score.
- ``text+expected``: generate, parse, then read the score distribution at the score position:
  from the completion's ``top_logprobs`` when the backend returned tokens (openai; the judge turns
  ``logprobs`` on), else from ``next_token_probs`` with the assistant prefix = the answer up to the
  score digit (after the reasoning for reasoning-mode judges). Only for a parsed verdict: an
  invalid completion gets no expected score.
- ``expected_only``: non-reasoning hf judges: one forward pass with the assistant prefix
  ``Score: `` and no generation; the verdict is the argmax, invalid when the valid score tokens
  hold less than ``min_valid_mass``.

Read-out failure (``readout_failure``): a parsed verdict whose read-out failed (no token
probabilities, no mass on the score tokens) has no expected score. ``invalid`` (default): its
``Judgement.reward`` is None, so a reward treats it as invalid under the run's invalid policy and
a run's rewards stay on one scale (E[s]); ``verdict``: the reward falls back to the parsed integer
score (scales mix; ``judge/readout_failure_rate`` says how often). Either way ``readout_error``
says why and ``Judgement.readout_failed`` is True.

Invalid policy: ``invalid: keep`` keeps unparsed judgements (``parsed=False``, raw text and
reason kept); ``invalid: retry`` re-asks up to ``invalid_retries`` times with seed+1, seed+2, …
(only useful with temperature > 0 or a seedless server) and keeps the last attempt if all fail.
``max_invalid_rate`` raises ``InvalidOutputBudgetExceeded`` once at least
``invalid_budget_min_items`` judgements were made and the invalid share exceeds it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from judgelab.backends.base import Backend, ProgressFn, TokenDistributionBackend
from judgelab.config.specs import BackendSpec, SamplingSpec, StrictModel
from judgelab.errors import ConfigError, DataError, InvalidOutputBudgetExceeded
from judgelab.judges.cache import JudgementCache, canonical_json, judgement_keys
from judgelab.judges.parsing import ParseResult, parse_verdict
from judgelab.judges.scoring import (
    ScoreDistribution,
    distribution_from_probs,
    distribution_from_tokens,
    readout_supported,
    score_candidates,
)
from judgelab.judges.templates import JudgeTemplate, get_template
from judgelab.judges.types import Battle, Judgement, Mode, PairwiseItem, PointwiseItem, Verdict
from judgelab.types import ChatMessage, Completion

logger = logging.getLogger(__name__)

Readout = Literal["text", "text+expected", "expected_only"]
ReadoutFailure = Literal["invalid", "verdict"]
InvalidPolicy = Literal["keep", "retry"]
IDENTITY_SCHEMA = "judgelab.judge/v1"


class JudgeSpec(StrictModel):
    """How to judge: backend, template, mode, sampling, score range, read-out, invalid policy."""

    name: str | None = Field(
        None, description="label in records and logs (e.g. 'gold', 'proxy'); not part of the cache key"
    )
    backend: BackendSpec
    template: str = Field("pointwise-v1", description="template family, see judges/templates.py")
    mode: Mode = "non_reasoning"
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    score_min: int = 0
    score_max: int = 9
    readout: Readout = "text"
    readout_top_logprobs: int = Field(
        20, ge=1, le=20, description="top_logprobs requested from openai backends for the read-out"
    )
    min_valid_mass: float = Field(
        0.5, ge=0.0, le=1.0, description="expected_only: below this valid-token mass the verdict is invalid"
    )
    readout_failure: ReadoutFailure = Field(
        "invalid",
        description="text+expected / expected_only: when the expected-score read-out fails on a parsed "
        "verdict — invalid: no reward value (the run's invalid policy applies); verdict: fall back to the "
        "integer score (mixes scales within a run)",
    )
    invalid: InvalidPolicy = "keep"
    invalid_retries: int = Field(2, ge=1, le=10, description="invalid: retry — extra attempts")
    max_invalid_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="raise InvalidOutputBudgetExceeded above this share; None = no budget"
    )
    invalid_budget_min_items: int = Field(20, ge=1, description="judgements before the budget applies")

    @model_validator(mode="after")
    def _consistent(self) -> JudgeSpec:
        if self.score_min >= self.score_max:
            raise ValueError(f"score_min ({self.score_min}) must be below score_max ({self.score_max})")
        try:
            template = get_template(self.template, self.mode)
        except ConfigError as e:
            raise ValueError(f"{e.message}; {e.hint}") from None
        if self.readout != "text":
            if template.protocol != "pointwise":
                raise ValueError(
                    f"readout={self.readout!r} needs a pointwise template; {self.template!r} is "
                    f"{template.protocol}: set readout: text"
                )
            if not readout_supported(self.score_min, self.score_max):
                raise ValueError(
                    f"readout={self.readout!r} needs single-digit scores (0..9), got "
                    f"{self.score_min}..{self.score_max}: set readout: text or narrow the range"
                )
            if self.backend.kind == "rules":
                raise ValueError("the rules backend has no token probabilities: set readout: text")
        if self.readout == "expected_only":
            if self.mode != "non_reasoning":
                raise ValueError("readout=expected_only reads the first answer token: use mode: non_reasoning")
            if self.backend.kind != "hf":
                raise ValueError(
                    "readout=expected_only needs the hf backend's next-token distribution; with an "
                    "openai backend use readout: text+expected (reads top_logprobs)"
                )
        return self


class Judge:
    """A judge: renders the template, calls the backend, parses, reads out, caches."""

    def __init__(
        self,
        spec: JudgeSpec,
        backend: Backend | None = None,
        cache: JudgementCache | None = None,
    ) -> None:
        self.spec = spec
        self.template: JudgeTemplate = get_template(spec.template, spec.mode)
        if backend is None:
            from judgelab.backends.factory import make_backend

            backend = make_backend(spec.backend)
        self.backend = backend
        self.cache = cache
        sampling = spec.sampling
        if spec.readout == "text+expected" and spec.backend.kind == "openai":
            sampling = sampling.model_copy(
                update={"logprobs": True, "top_logprobs": max(sampling.top_logprobs, spec.readout_top_logprobs)}
            )
        self.sampling = sampling
        self.identity: dict[str, Any] = {
            "schema": IDENTITY_SCHEMA,
            "backend": dict(backend.identity),
            "template": self.template.name,
            "template_hash": self.template.sha256,
            "mode": spec.mode,
            "protocol": self.template.protocol,
            "sampling": sampling.model_dump(mode="json"),
            "score_range": [spec.score_min, spec.score_max],
            "readout": spec.readout,
            "min_valid_mass": spec.min_valid_mass if spec.readout == "expected_only" else None,
            "invalid": spec.invalid,
            "invalid_retries": spec.invalid_retries if spec.invalid == "retry" else 0,
        }
        self._identity_json = canonical_json(self.identity)
        self._needs_expected = spec.readout != "text" and spec.readout_failure == "invalid"
        self.judge_id = hashlib.sha256(self._identity_json.encode("utf-8")).hexdigest()[:16]
        self.n_judged = 0
        self.n_invalid = 0
        self.n_cached = 0

    # ------------------------------------------------------------------ public API
    @property
    def name(self) -> str:
        return self.spec.name or f"{self.template.name}:{self.judge_id[:8]}"

    @property
    def protocol(self) -> str:
        return self.template.protocol

    @property
    def invalid_rate(self) -> float:
        return self.n_invalid / self.n_judged if self.n_judged else 0.0

    @property
    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "judged": self.n_judged,
            "invalid": self.n_invalid,
            "cached": self.n_cached,
            "judge/invalid_rate": self.invalid_rate,
        }
        if self.cache is not None:
            out["cache"] = self.cache.stats
        return out

    def record_identity(self) -> dict[str, Any]:
        """What a record carries about the judge: its name, id and full identity."""
        return {"name": self.name, "judge_id": self.judge_id, **self.identity}

    async def score_pointwise(
        self,
        items: Sequence[PointwiseItem],
        *,
        progress: ProgressFn | None = None,
        check_budget: bool = True,
    ) -> list[Judgement]:
        """One judgement per item (pointwise templates)."""
        self._need_protocol("pointwise", "score_pointwise")
        inputs = [self._inputs({"instruction": it.instruction, "response": it.response, "rubric": it.rubric})
                  for it in items]
        out = await self._judge(inputs, progress)
        if check_budget:
            self.check_invalid_budget()
        return out

    async def score_pairwise(
        self,
        items: Sequence[PairwiseItem],
        *,
        both_orders: bool = True,
        progress: ProgressFn | None = None,
        check_budget: bool = True,
    ) -> list[Battle]:
        """One battle per item (pairwise or arena templates); both orders in one batch."""
        if self.protocol not in ("pairwise", "arena"):
            raise ConfigError(
                f"score_pairwise needs a pairwise or arena template; {self.template.name!r} is {self.protocol}",
                "set template: pairwise-v1 or arena-v1",
            )
        inputs = []
        for it in items:
            inputs.append(self._inputs({"instruction": it.instruction, "response_a": it.response_a,
                                        "response_b": it.response_b, "rubric": it.rubric}))
        if both_orders:
            for it in items:
                inputs.append(self._inputs({"instruction": it.instruction, "response_a": it.response_b,
                                            "response_b": it.response_a, "rubric": it.rubric}))
        judgements = await self._judge(inputs, progress)
        n = len(items)
        battles = [
            Battle.from_judgements(judgements[i], judgements[n + i] if both_orders else None)
            for i in range(n)
        ]
        if check_budget:
            self.check_invalid_budget()
        return battles

    async def write_rubrics(
        self,
        instructions: Sequence[str],
        *,
        progress: ProgressFn | None = None,
        check_budget: bool = True,
    ) -> list[Judgement]:
        """One rubric per instruction (``rubric-gen-v1``); the rubric is ``verdict.rubric``."""
        self._need_protocol("rubric", "write_rubrics")
        out = await self._judge([self._inputs({"instruction": s}) for s in instructions], progress)
        if check_budget:
            self.check_invalid_budget()
        return out

    def check_invalid_budget(self) -> None:
        """Raise ``InvalidOutputBudgetExceeded`` when the configured budget is exceeded."""
        cap = self.spec.max_invalid_rate
        if cap is None or self.n_judged < self.spec.invalid_budget_min_items:
            return
        if self.invalid_rate > cap:
            raise InvalidOutputBudgetExceeded(
                f"judge {self.name!r} produced {self.n_invalid} invalid verdicts out of "
                f"{self.n_judged} ({self.invalid_rate:.1%}), above max_invalid_rate={cap:g}",
                "look at the raw_text of invalid records; raise max_invalid_rate, allow more "
                "max_tokens, use invalid: retry, or pick a stronger judge model",
            )

    async def aclose(self) -> None:
        await self.backend.aclose()

    # ------------------------------------------------------------------ internals
    def _need_protocol(self, protocol: str, method: str) -> None:
        if self.protocol != protocol:
            raise ConfigError(
                f"{method} needs a {protocol} template; {self.template.name!r} is {self.protocol}",
                f"pick a {protocol} template for this judge",
            )

    def _inputs(self, fields: Mapping[str, str | None]) -> dict[str, str]:
        out: dict[str, str] = {}
        for block in self.template.blocks:
            value = fields.get(block)
            if not isinstance(value, str):
                raise DataError(
                    f"judge template {self.template.name!r} needs a text {block!r}, got "
                    f"{type(value).__name__}",
                    "rubric-guided templates need a rubric per item (write them with rubric-gen-v1)"
                    if block == "rubric" else "check the input records",
                )
            out[block] = value
        return out

    async def _judge(self, inputs: list[dict[str, str]], progress: ProgressFn | None) -> list[Judgement]:
        keys = judgement_keys(self.identity, inputs, self._identity_json)
        results: list[Judgement | None] = [None] * len(inputs)
        if self.cache is not None and keys:
            found = self.cache.get_many(keys)
            for i, k in enumerate(keys):
                if k in found:
                    j = Judgement.from_dict(found[k])
                    j.cached = True
                    j.judge = self.record_identity()
                    results[i] = j
            n_hit = sum(r is not None for r in results)
            if progress is not None and n_hit:
                progress(n_hit)
        # identical inputs in one batch are judged once
        todo: dict[str, int] = {}
        for i, k in enumerate(keys):
            if results[i] is None and k not in todo:
                todo[k] = i
        if todo:
            idx = list(todo.values())
            fresh = await self._compute([inputs[i] for i in idx], progress)
            for i, j in zip(idx, fresh):
                results[i] = j
            if self.cache is not None:
                self.cache.put_many((keys[i], _cache_value(j)) for i, j in zip(idx, fresh))
            for i, k in enumerate(keys):
                if results[i] is None:
                    results[i] = results[todo[k]]
        final = [r for r in results if r is not None]
        for r in final:
            r.needs_expected = self._needs_expected
        self.n_judged += len(final)
        self.n_invalid += sum(not r.verdict.parsed for r in final)
        self.n_cached += sum(r.cached for r in final)
        return final

    async def _compute(self, inputs: list[dict[str, str]], progress: ProgressFn | None) -> list[Judgement]:
        messages = [self.template.render(x, score_min=self.spec.score_min, score_max=self.spec.score_max)
                    for x in inputs]
        if self.spec.readout == "expected_only":
            out = await self._expected_only(messages)
            if progress is not None:
                progress(len(out))
            return out
        completions = list(await self.backend.complete_many(messages, self.sampling, progress))
        parses = [self._parse(c) for c in completions]
        attempts = [1] * len(completions)
        attempt = 1
        while self.spec.invalid == "retry" and attempt <= self.spec.invalid_retries:
            redo = [i for i, pr in enumerate(parses) if not pr.verdict.parsed]
            if not redo:
                break
            seed = None if self.sampling.seed is None else self.sampling.seed + attempt
            retry_sampling = self.sampling.model_copy(update={"seed": seed})
            again = await self.backend.complete_many([messages[i] for i in redo], retry_sampling)
            attempt += 1
            for i, c in zip(redo, again):
                completions[i], parses[i], attempts[i] = c, self._parse(c), attempt
        judgements = [self._from_completion(c, pr, a) for c, pr, a in zip(completions, parses, attempts)]
        if self.spec.readout == "text+expected":
            await self._read_distributions(messages, completions, parses, judgements)
        return judgements

    def _parse(self, c: Completion) -> ParseResult:
        return parse_verdict(c.text, self.template.protocol, score_min=self.spec.score_min,
                             score_max=self.spec.score_max, finish_reason=c.finish_reason)

    def _base(self, verdict: Verdict, raw_text: str) -> Judgement:
        return Judgement(
            verdict=verdict,
            raw_text=raw_text,
            judge_id=self.judge_id,
            judge=self.record_identity(),
            template=self.template.name,
            template_hash=self.template.sha256,
            mode=self.spec.mode,
        )

    def _from_completion(self, c: Completion, pr: ParseResult, attempts: int) -> Judgement:
        j = self._base(pr.verdict, c.text)
        j.finish_reason = c.finish_reason
        j.timings = {"latency_s": c.latency_s}
        j.attempts = attempts
        if c.reasoning:
            j.reasoning = c.reasoning
        elif self.spec.mode == "reasoning" and pr.line_start is not None:
            j.reasoning = c.text[: pr.line_start].strip() or None
        return j

    async def _read_distributions(
        self,
        messages: list[list[ChatMessage]],
        completions: list[Completion],
        parses: list[ParseResult],
        judgements: list[Judgement],
    ) -> None:
        """Fill expected score / distribution for parsed pointwise verdicts (see module doc)."""
        lo, hi = self.spec.score_min, self.spec.score_max
        prefix_requests: list[tuple[int, tuple[list[ChatMessage], str]]] = []
        for i, (j, c, pr) in enumerate(zip(judgements, completions, parses)):
            if not pr.verdict.parsed or pr.value_span is None:
                j.readout_error = "no valid verdict to read the score position from"
            elif c.tokens is not None:
                t0 = time.perf_counter()
                _apply(j, distribution_from_tokens(c.tokens, c.text, pr.value_span, lo, hi))
                j.timings["readout_s"] = time.perf_counter() - t0
            elif isinstance(self.backend, TokenDistributionBackend):
                prefix = c.text[: pr.value_span[0]]
                if c.reasoning:  # the reasoning channel precedes the answer in the assistant turn
                    prefix = f"<think>\n{c.reasoning}\n</think>\n\n{prefix}"
                prefix_requests.append((i, (messages[i], prefix)))
            else:
                j.readout_error = "the backend returned no token probabilities"
        if not prefix_requests:
            return
        t0 = time.perf_counter()
        probs = await self.backend.next_token_probs(  # type: ignore[attr-defined]
            [r for _, r in prefix_requests], score_candidates(lo, hi)
        )
        per_item = (time.perf_counter() - t0) / len(prefix_requests)
        for (i, _), p in zip(prefix_requests, probs):
            judgements[i].timings["readout_s"] = per_item
            dist = distribution_from_probs(p, lo, hi)
            _apply(judgements[i], dist if dist is not None else "no probability mass on valid score tokens")

    async def _expected_only(self, messages: list[list[ChatMessage]]) -> list[Judgement]:
        backend = self.backend
        if not isinstance(backend, TokenDistributionBackend):
            raise ConfigError(
                f"readout=expected_only needs a backend with next_token_probs; {type(backend).__name__} has none",
                "use the hf backend or readout: text+expected",
            )
        prefix = self.template.answer_prefix or ""
        lo, hi = self.spec.score_min, self.spec.score_max
        t0 = time.perf_counter()
        probs = await backend.next_token_probs([(m, prefix) for m in messages], score_candidates(lo, hi))
        per_item = (time.perf_counter() - t0) / max(1, len(messages))
        out = []
        for p in probs:
            dist = distribution_from_probs(p, lo, hi)
            if dist is None:
                verdict = Verdict.invalid("pointwise", "no probability mass on valid score tokens")
            elif dist.valid_mass < self.spec.min_valid_mass:
                verdict = Verdict.invalid(
                    "pointwise",
                    f"valid score tokens hold {dist.valid_mass:.3f} of the probability mass "
                    f"(< min_valid_mass {self.spec.min_valid_mass:g})",
                )
            else:
                verdict = Verdict("pointwise", parsed=True, score=dist.argmax)
            j = self._base(verdict, "")
            j.verdict_source = "distribution"
            j.timings = {"latency_s": 0.0, "readout_s": per_item}
            if dist is not None:
                _apply(j, dist)
                if not verdict.parsed:  # keep the evidence, never a score
                    j.expected_score = None
            out.append(j)
        return out


def _apply(j: Judgement, dist: ScoreDistribution | str) -> None:
    if isinstance(dist, str):
        j.readout_error = dist
        return
    j.expected_score = dist.expected
    j.score_probs = dist.probs
    j.valid_mass = dist.valid_mass
    j.argmax_score = dist.argmax


def _cache_value(j: Judgement) -> dict[str, Any]:
    d = j.to_dict()
    d["judge"] = {}  # identity is in the key; records re-attach it
    d["cached"] = False
    return d


__all__ = ["IDENTITY_SCHEMA", "InvalidPolicy", "Judge", "JudgeSpec", "Readout", "ReadoutFailure"]
