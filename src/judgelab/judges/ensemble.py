"""Ensemble judges (L2): several pointwise judges, one aggregated score per item.

Aggregates over the members' per-item values (each member's ``Judgement.reward``: its expected
score when read out, else its parsed score; None — an invalid member — when a member's read-out
failed under ``readout_failure: invalid``):

- ``mean``: the average;
- ``min``: the most pessimistic member (a policy must satisfy every judge);
- ``mean_minus_std``: ``mean − λ·std`` with the population std (ddof=0), which penalises items the
  members disagree on (uncertainty-penalised reward).

Invalid members, explicitly: a member whose judgement is invalid (``parsed=False``) contributes
nothing, and its reason is kept in ``member_reasons``. If fewer than ``min_valid`` members are
valid (default: all of them), the ensemble verdict is invalid too — no score is made up from a
partial panel unless ``min_valid`` allows it. Members run concurrently on the same items.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator

from judgelab.config.specs import StrictModel
from judgelab.errors import ConfigError
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.types import Judgement, PointwiseItem

Aggregate = Literal["mean", "min", "mean_minus_std"]


class EnsembleSpec(StrictModel):
    """Config for an ``EnsembleJudge``: pointwise member judges and how to combine them."""

    members: list[JudgeSpec] = Field(..., min_length=1)
    aggregate: Aggregate = "mean"
    lam: float = Field(1.0, ge=0.0, description="λ in mean − λ·std (aggregate: mean_minus_std)")
    min_valid: int | None = Field(None, ge=1, description="valid members needed; None = all")

    @model_validator(mode="after")
    def _check(self) -> EnsembleSpec:
        if self.min_valid is not None and self.min_valid > len(self.members):
            raise ValueError(f"min_valid={self.min_valid} exceeds the {len(self.members)} members")
        return self


def aggregate_values(values: Sequence[float], aggregate: Aggregate, lam: float = 1.0) -> float:
    """Combine member values (non-empty)."""
    if not values:
        raise ValueError("no values to aggregate")
    if aggregate == "min":
        return float(min(values))
    mean = math.fsum(values) / len(values)
    if aggregate == "mean":
        return mean
    var = math.fsum((v - mean) ** 2 for v in values) / len(values)
    return mean - lam * math.sqrt(var)


@dataclass
class EnsembleJudgement:
    """The aggregated score (None when too few members were valid) and every member judgement."""

    score: float | None
    parsed: bool
    members: list[Judgement]
    aggregate: Aggregate
    lam: float
    n_valid: int
    invalid_reason: str | None = None
    member_reasons: dict[int, str] = field(default_factory=dict)

    @property
    def reward(self) -> float | None:
        return self.score

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "parsed": self.parsed,
            "aggregate": self.aggregate,
            "lam": self.lam,
            "n_valid": self.n_valid,
            "invalid_reason": self.invalid_reason,
            "member_reasons": {str(k): v for k, v in self.member_reasons.items()},
            "members": [m.to_dict() for m in self.members],
        }


class EnsembleJudge:
    """Several pointwise judges aggregated per item by mean, min or mean − λ·std."""

    def __init__(
        self,
        judges: Sequence[Judge],
        aggregate: Aggregate = "mean",
        lam: float = 1.0,
        min_valid: int | None = None,
    ) -> None:
        if not judges:
            raise ConfigError("an ensemble needs at least one judge", "list members under members:")
        for j in judges:
            if j.protocol != "pointwise":
                raise ConfigError(
                    f"ensemble member {j.name!r} uses a {j.protocol} template",
                    "ensembles aggregate pointwise scores: give every member a pointwise template",
                )
        if lam < 0:
            raise ConfigError(f"lam must be ≥ 0, got {lam}", "λ scales the std penalty")
        self.judges = list(judges)
        self.aggregate: Aggregate = aggregate
        self.lam = lam
        self.min_valid = len(self.judges) if min_valid is None else min_valid
        if not 1 <= self.min_valid <= len(self.judges):
            raise ConfigError(
                f"min_valid={min_valid} must be between 1 and the {len(self.judges)} members",
                "lower min_valid or add members",
            )

    @classmethod
    def from_spec(cls, spec: EnsembleSpec, **judge_kwargs: Any) -> EnsembleJudge:
        return cls([Judge(m, **judge_kwargs) for m in spec.members], spec.aggregate, spec.lam, spec.min_valid)

    async def score_pointwise(self, items: Sequence[PointwiseItem]) -> list[EnsembleJudgement]:
        per_member = await asyncio.gather(*(j.score_pointwise(items) for j in self.judges))
        out = []
        for i in range(len(items)):
            members = [per_member[m][i] for m in range(len(self.judges))]
            out.append(self._combine(members))
        return out

    def _combine(self, members: list[Judgement]) -> EnsembleJudgement:
        values: list[float] = []
        reasons: dict[int, str] = {}
        for m, j in enumerate(members):
            r = j.reward if j.verdict.parsed else None
            if r is None:
                reasons[m] = j.verdict.invalid_reason or j.readout_error or "no score"
            else:
                values.append(r)
        n_valid = len(values)
        if n_valid < self.min_valid:
            return EnsembleJudgement(
                score=None,
                parsed=False,
                members=members,
                aggregate=self.aggregate,
                lam=self.lam,
                n_valid=n_valid,
                invalid_reason=f"{n_valid} of {len(members)} members valid (< min_valid {self.min_valid})",
                member_reasons=reasons,
            )
        return EnsembleJudgement(
            score=aggregate_values(values, self.aggregate, self.lam),
            parsed=True,
            members=members,
            aggregate=self.aggregate,
            lam=self.lam,
            n_valid=n_valid,
            member_reasons=reasons,
        )

    async def aclose(self) -> None:
        for j in self.judges:
            await j.aclose()


__all__ = ["Aggregate", "EnsembleJudge", "EnsembleJudgement", "EnsembleSpec", "aggregate_values"]
