"""Judge value types (L2): ``Verdict``, ``Judgement``, ``Battle`` and the judged items.

Vocabulary (DESIGN.md): a *verdict* is a parsed decision; a *judgement* is verdict + raw text +
reasoning + metadata; a *battle* is one pairwise comparison judged in both orders.

Plain dataclasses with ``to_dict`` / ``from_dict`` so a judgement round-trips through the cache
and JSONL records unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

JudgeProtocol = Literal["pointwise", "pairwise", "arena", "rubric"]
"""What a template asks for: a score, a two-way choice, a five-level verdict, or a rubric."""

Mode = Literal["non_reasoning", "reasoning"]

PairChoice = Literal["A", "B"]
ArenaChoice = Literal["A>>B", "A>B", "A=B", "B>A", "B>>A"]

ARENA_CHOICES: tuple[str, ...] = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
_SWAP = {"A": "B", "B": "A", "A>>B": "B>>A", "A>B": "B>A", "A=B": "A=B", "B>A": "A>B", "B>>A": "A>>B"}


def swap_choice(choice: str) -> str:
    """The same verdict seen with A and B exchanged (``A>B`` ↔ ``B>A``, ``A`` ↔ ``B``)."""
    return _SWAP[choice]


# ---------------------------------------------------------------------------- items
@dataclass(frozen=True)
class PointwiseItem:
    """One response to score. ``rubric`` is used by rubric-guided templates only."""

    instruction: str
    response: str
    rubric: str | None = None


@dataclass(frozen=True)
class PairwiseItem:
    """Two responses to compare (A and B in the caller's frame)."""

    instruction: str
    response_a: str
    response_b: str
    rubric: str | None = None


# ---------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Verdict:
    """A parsed decision, or a first-class invalid outcome (``parsed=False`` + ``invalid_reason``).

    ``score`` is set for pointwise verdicts, ``choice`` for pairwise (``"A"``/``"B"``) and arena
    (``"A>>B"`` ... ``"B>>A"``) verdicts, ``rubric`` for rubric generation. An invalid verdict
    carries none of them: it is never turned into a default score.
    """

    protocol: JudgeProtocol
    parsed: bool
    score: int | None = None
    choice: str | None = None
    rubric: str | None = None
    invalid_reason: str | None = None

    @classmethod
    def invalid(cls, protocol: JudgeProtocol, reason: str) -> Verdict:
        return cls(protocol=protocol, parsed=False, invalid_reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(**d)


@dataclass
class Judgement:
    """A verdict with everything needed to audit or recompute it.

    - ``raw_text``: the judge's final answer exactly as returned (reasoning excluded);
    - ``reasoning``: the reasoning field / ``<think>`` block, or, for a reasoning-mode template on
      a model without a reasoning channel, the answer text before the verdict line;
    - ``expected_score``: Σ x·p(x) over valid score tokens, renormalised over them;
      ``score_probs`` the renormalised distribution, ``valid_mass`` the mass before
      renormalising, ``argmax_score`` its mode; ``readout_error`` says why there is no
      distribution when one was asked for;
    - ``judge``: the judge identity (secret-free); ``judge_id`` its short hash;
    - ``timings``: seconds (``latency_s`` of the backend call, ``readout_s`` of the distribution
      read-out); ``cached``: served from the cache (timings are those of the original call);
    - ``verdict_source``: ``text`` (parsed from the completion) or ``distribution`` (argmax of the
      next-token distribution, ``readout: expected_only``; then ``raw_text`` is empty);
    - ``needs_expected``: set by the judge when its reward is the expected score and a failed
      read-out must not fall back to the integer verdict (``JudgeSpec.readout_failure: invalid``):
      ``reward`` is then None for such a judgement, so one run never mixes E[s] and integers.
    """

    verdict: Verdict
    raw_text: str
    reasoning: str | None = None
    expected_score: float | None = None
    score_probs: dict[int, float] | None = None
    valid_mass: float | None = None
    argmax_score: int | None = None
    readout_error: str | None = None
    judge_id: str = ""
    judge: dict[str, Any] = field(default_factory=dict)
    template: str = ""
    template_hash: str = ""
    mode: Mode = "non_reasoning"
    verdict_source: Literal["text", "distribution"] = "text"
    finish_reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    attempts: int = 1
    cached: bool = False
    needs_expected: bool = False

    @property
    def parsed(self) -> bool:
        return self.verdict.parsed

    @property
    def readout_failed(self) -> bool:
        """A parsed verdict whose expected-score read-out was asked for and failed."""
        return self.verdict.parsed and self.expected_score is None and self.readout_error is not None

    @property
    def reward(self) -> float | None:
        """The number a reward function uses: the expected score if read out; else the parsed score,
        unless ``needs_expected`` (the read-out failed and the judge treats that as invalid: None)."""
        if self.expected_score is not None:
            return self.expected_score
        if self.needs_expected:
            return None
        return None if self.verdict.score is None else float(self.verdict.score)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.score_probs is not None:  # JSON object keys are strings
            d["score_probs"] = {str(k): v for k, v in self.score_probs.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Judgement:
        d = dict(d)
        d["verdict"] = Verdict.from_dict(d["verdict"])
        if d.get("score_probs") is not None:
            d["score_probs"] = {int(k): float(v) for k, v in d["score_probs"].items()}
        return cls(**d)


@dataclass
class Battle:
    """One pairwise comparison judged in both orders.

    ``first`` judged (A, B) as given; ``second`` judged (B, A) and its verdict is mapped back to
    the caller's frame in ``second_choice``. ``consistent`` is True when both orders agree,
    False when they disagree, None when either is invalid (or only one order was judged).
    ``winner`` (pairwise protocol): the agreed choice; ``"tie"`` when the orders disagree
    (position-inconsistent); None when either judgement is invalid.
    For the arena protocol ``winner`` is the agreed five-level verdict, ``"inconsistent"`` when
    the orders disagree; the later arena scoring reads ``first_choice`` / ``second_choice``.
    """

    first: Judgement
    second: Judgement | None
    first_choice: str | None
    second_choice: str | None
    consistent: bool | None
    winner: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": self.first.to_dict(),
            "second": None if self.second is None else self.second.to_dict(),
            "first_choice": self.first_choice,
            "second_choice": self.second_choice,
            "consistent": self.consistent,
            "winner": self.winner,
        }

    @classmethod
    def from_judgements(cls, first: Judgement, second: Judgement | None) -> Battle:
        protocol = first.verdict.protocol
        c1 = first.verdict.choice if first.verdict.parsed else None
        c2 = None
        if second is not None and second.verdict.parsed and second.verdict.choice is not None:
            c2 = swap_choice(second.verdict.choice)
        if second is None:
            return cls(first, None, c1, None, None, c1)
        if c1 is None or c2 is None:
            return cls(first, second, c1, c2, None, None)
        consistent = c1 == c2
        if consistent:
            winner: str | None = c1
        else:
            winner = "tie" if protocol == "pairwise" else "inconsistent"
        return cls(first, second, c1, c2, consistent, winner)


__all__ = [
    "ARENA_CHOICES",
    "ArenaChoice",
    "Battle",
    "JudgeProtocol",
    "Judgement",
    "Mode",
    "PairChoice",
    "PairwiseItem",
    "PointwiseItem",
    "Verdict",
    "swap_choice",
]
