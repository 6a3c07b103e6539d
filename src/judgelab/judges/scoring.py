"""Expected score from the judge's token distribution (L2).

``E[s] = Σ_x x·p(x) / Σ_x p(x)`` over the valid score tokens x ∈ [score_min, score_max] only:
mass on other tokens (a letter, a newline) is dropped and the rest renormalised; that dropped
share is reported as ``1 - valid_mass`` so a judge that rarely wanted to emit a digit is visible.
The argmax of the renormalised distribution is reported too.

Two sources:

- a next-token distribution (hf backend ``next_token_probs``): raw P(candidate) per score string;
- ``top_logprobs`` of an OpenAI-compatible server, at the completion token that holds the score
  digit. Alternatives whose text is an integer up to surrounding whitespace count for that integer
  (``"7"`` and ``" 7"`` both read as 7: either continuation parses as 7). Only the top-k
  alternatives the server returns are seen, so ``valid_mass`` is a lower bound there.

The read-out needs each score to be one token: score ranges are limited to single digits (0–9) —
``readout_supported`` says whether a range qualifies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from judgelab.types import TokenLogprob

_INT_TOKEN = re.compile(r"\s*([+-]?\d+)\s*")


@dataclass(frozen=True)
class ScoreDistribution:
    """``probs``: renormalised over valid scores (sums to 1); ``valid_mass``: mass before that."""

    probs: dict[int, float]
    valid_mass: float
    expected: float
    argmax: int


def readout_supported(score_min: int, score_max: int) -> bool:
    """True when every score in the range is a single digit (one token in common tokenizers)."""
    return 0 <= score_min <= score_max <= 9


def score_candidates(score_min: int, score_max: int) -> list[str]:
    """The candidate strings for a next-token read-out: ``["0", ..., "9"]`` for 0–9."""
    return [str(x) for x in range(score_min, score_max + 1)]


def distribution_from_probs(
    raw: Mapping[str, float] | Mapping[int, float], score_min: int, score_max: int
) -> ScoreDistribution | None:
    """Renormalise raw P(score) over the valid scores; None when they hold no mass."""
    mass: dict[int, float] = {x: 0.0 for x in range(score_min, score_max + 1)}
    for key, p in raw.items():
        value = _as_int(key)
        if value is None or value not in mass:
            continue
        if not math.isfinite(p) or p < 0:
            raise ValueError(f"probability for score {key!r} is {p}")
        mass[value] += float(p)
    total = sum(mass.values())
    if total <= 0.0:
        return None
    probs = {x: p / total for x, p in mass.items()}
    expected = sum(x * p for x, p in probs.items())
    argmax = max(probs, key=lambda x: (probs[x], -x))  # ties → the lower score
    return ScoreDistribution(probs=probs, valid_mass=total, expected=expected, argmax=argmax)


def distribution_from_top_logprobs(
    top: Mapping[str, float], score_min: int, score_max: int, chosen: TokenLogprob | None = None
) -> ScoreDistribution | None:
    """Aggregate ``exp(logprob)`` of the alternatives that read as a valid score."""
    alts = dict(top)
    if chosen is not None and chosen.token not in alts:
        alts[chosen.token] = chosen.logprob
    raw: dict[int, float] = {}
    for token, lp in alts.items():
        m = _INT_TOKEN.fullmatch(token)
        if not m:
            continue
        raw[int(m.group(1))] = raw.get(int(m.group(1)), 0.0) + math.exp(lp)
    return distribution_from_probs(raw, score_min, score_max)


def token_index_at(tokens: Sequence[TokenLogprob], answer: str, span: tuple[int, int]) -> int | str:
    """Index of the token holding ``answer[span]``, or a reason why it cannot be found.

    The tokens cover the whole completion (maybe with reasoning in front); the answer is located as
    its last occurrence in the joined token text.
    """
    joined = "".join(t.token for t in tokens)
    base = joined.rfind(answer)
    if base < 0:
        return "the returned tokens do not spell out the answer text"
    start, end = base + span[0], base + span[1]
    pos = 0
    for i, t in enumerate(tokens):
        nxt = pos + len(t.token)
        if pos <= start < nxt:
            if end > nxt:
                return "the score spans several tokens"
            return i
        pos = nxt
    return "score position not found in the returned tokens"


def distribution_from_tokens(
    tokens: Sequence[TokenLogprob],
    answer: str,
    span: tuple[int, int],
    score_min: int,
    score_max: int,
) -> ScoreDistribution | str:
    """The score distribution at the score token of a completion, or a reason it is unavailable."""
    idx = token_index_at(tokens, answer, span)
    if isinstance(idx, str):
        return idx
    tok = tokens[idx]
    if not tok.top_logprobs:
        return "the server returned no top_logprobs at the score position"
    dist = distribution_from_top_logprobs(tok.top_logprobs, score_min, score_max, chosen=tok)
    if dist is None:
        return "no probability mass on valid score tokens"
    return dist


def _as_int(key: object) -> int | None:
    if isinstance(key, int):
        return key
    if isinstance(key, str):
        m = _INT_TOKEN.fullmatch(key)
        return int(m.group(1)) if m else None
    return None


__all__ = [
    "ScoreDistribution",
    "distribution_from_probs",
    "distribution_from_tokens",
    "distribution_from_top_logprobs",
    "readout_supported",
    "score_candidates",
    "token_index_at",
]
