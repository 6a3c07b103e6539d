"""Verdict parsing (L2): strict grammar, last match, the judge's own answer text only.

The caller passes the judge's final answer (``Completion.text``: reasoning fields and ``<think>``
blocks already removed by the backend). The prompt, and so the response under judgement, never
reaches the parser.

Grammar (one verdict line, alone on its line; optional markdown bold ``**`` around the label or
the whole line and one optional trailing ``.`` are tolerated, nothing else):

- pointwise: ``Score: N`` with N an integer in [score_min, score_max];
- pairwise: ``Verdict: [[A]]`` or ``Verdict: [[B]]``;
- arena: ``Verdict: [[A>>B]]``, ``[[A>B]]``, ``[[A=B]]``, ``[[B>A]]`` or ``[[B>>A]]``;
- rubric: a line starting ``Rubric:``; the rubric is what follows it.

The **last** verdict line wins (a judge that quotes "Score: 9" while reasoning and then writes its
own final line is read correctly). If that last line is malformed (score out of range, a choice
outside the grammar) the verdict is invalid: the parser never falls back to an earlier line.
A completion cut off by the token limit (``finish_reason == "length"``) is valid only if the
verdict line is its last non-empty line, so a "Score: 5" half-way through unfinished reasoning is
not taken as the verdict. Invalid output is returned as ``Verdict(parsed=False, invalid_reason)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from judgelab.judges.types import ARENA_CHOICES, JudgeProtocol, Verdict

_BOLD = r"(?:\*\*)?"
_TAIL = r"[ \t]*" + _BOLD + r"[ \t]*\.?[ \t]*$"
SCORE_LINE = re.compile(
    r"^[ \t]*" + _BOLD + r"Score:" + _BOLD + r"[ \t]*(?P<value>[+-]?\d+)" + _TAIL, re.MULTILINE
)
VERDICT_LINE = re.compile(
    r"^[ \t]*" + _BOLD + r"Verdict:" + _BOLD + r"[ \t]*\[\[(?P<value>[^\[\]\n]{1,16})\]\]" + _TAIL,
    re.MULTILINE,
)
RUBRIC_LINE = re.compile(r"^[ \t]*" + _BOLD + r"Rubric:" + _BOLD + r"[ \t]*", re.MULTILINE)

PAIR_CHOICES: tuple[str, ...] = ("A", "B")


@dataclass(frozen=True)
class ParseResult:
    """A verdict and where it sits in the text.

    ``value_span``: character offsets of the score / choice in the text (for reading the token
    distribution at that position); ``line_start``: offset of the verdict line (the text before
    it is the inline reasoning of a reasoning-mode judge). Both None when nothing matched.
    """

    verdict: Verdict
    value_span: tuple[int, int] | None = None
    line_start: int | None = None


def _no_answer_reason(text: str, what: str) -> str:
    if not text.strip():
        return f"empty answer (no {what})"
    return f"no {what} line in the answer"


def _cut_off(text: str, match_end: int, finish_reason: str | None) -> bool:
    return finish_reason == "length" and bool(text[match_end:].strip())


def parse_pointwise(
    text: str, score_min: int = 0, score_max: int = 9, finish_reason: str | None = None
) -> ParseResult:
    """The last ``Score: N`` line of ``text``; invalid if absent, malformed or out of range."""
    matches = list(SCORE_LINE.finditer(text))
    if not matches:
        return ParseResult(Verdict.invalid("pointwise", _no_answer_reason(text, "'Score: N'")))
    m = matches[-1]
    if _cut_off(text, m.end(), finish_reason):
        return ParseResult(
            Verdict.invalid("pointwise", "answer cut off by the token limit after the last 'Score:' line")
        )
    value = int(m.group("value"))
    span = m.span("value")
    if not score_min <= value <= score_max:
        return ParseResult(
            Verdict.invalid("pointwise", f"score {value} outside the range {score_min}..{score_max}"),
            span,
            m.start(),
        )
    return ParseResult(Verdict("pointwise", parsed=True, score=value), span, m.start())


def parse_choice(text: str, protocol: JudgeProtocol, finish_reason: str | None = None) -> ParseResult:
    """The last ``Verdict: [[X]]`` line, X in the protocol's grammar (pairwise or arena)."""
    allowed = PAIR_CHOICES if protocol == "pairwise" else ARENA_CHOICES
    matches = list(VERDICT_LINE.finditer(text))
    if not matches:
        return ParseResult(Verdict.invalid(protocol, _no_answer_reason(text, "'Verdict: [[...]]'")))
    m = matches[-1]
    if _cut_off(text, m.end(), finish_reason):
        return ParseResult(
            Verdict.invalid(protocol, "answer cut off by the token limit after the last 'Verdict:' line")
        )
    value = m.group("value").strip()
    span = m.span("value")
    if value not in allowed:
        return ParseResult(
            Verdict.invalid(protocol, f"verdict [[{value}]] is not one of {', '.join(allowed)}"),
            span,
            m.start(),
        )
    return ParseResult(Verdict(protocol, parsed=True, choice=value), span, m.start())


def parse_rubric(text: str, finish_reason: str | None = None) -> ParseResult:
    """The text after the last ``Rubric:`` line start; invalid if absent, empty or cut off."""
    matches = list(RUBRIC_LINE.finditer(text))
    if not matches:
        return ParseResult(Verdict.invalid("rubric", _no_answer_reason(text, "'Rubric:'")))
    m = matches[-1]
    if finish_reason == "length":
        return ParseResult(Verdict.invalid("rubric", "rubric cut off by the token limit"))
    rubric = text[m.end():].strip()
    if not rubric:
        return ParseResult(Verdict.invalid("rubric", "empty rubric after 'Rubric:'"))
    return ParseResult(Verdict("rubric", parsed=True, rubric=rubric), (m.end(), len(text)), m.start())


def parse_verdict(
    text: str,
    protocol: JudgeProtocol,
    *,
    score_min: int = 0,
    score_max: int = 9,
    finish_reason: str | None = None,
) -> ParseResult:
    """Dispatch on the protocol."""
    if protocol == "pointwise":
        return parse_pointwise(text, score_min, score_max, finish_reason)
    if protocol in ("pairwise", "arena"):
        return parse_choice(text, protocol, finish_reason)
    return parse_rubric(text, finish_reason)


__all__ = [
    "PAIR_CHOICES",
    "RUBRIC_LINE",
    "SCORE_LINE",
    "VERDICT_LINE",
    "ParseResult",
    "parse_choice",
    "parse_pointwise",
    "parse_rubric",
    "parse_verdict",
]
