"""Checkable writing rules: how each is worded in an instruction, parsed back, and checked.

Each rule kind has one fixed English template. The generator renders it into the instruction and
the checklist gold parses the instruction text back with the same template, so the gold judges
from exactly the text any LLM judge sees.

``easy`` kinds can be checked by looking at the text (a word present or absent, how it starts or
ends, capital letters, commas, a question mark, a name, a title line, a bulleted list).
``hard`` adds counting kinds (word range, exact numbers of bullets, paragraphs or sentences, a
word used at least N times): these are the ones a 135M judge fails to learn on a CPU budget
(see docs/synthetic-world.md), kept for GPU-scale studies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from judgelab.data.world.text import (
    WORD_RE,
    TextStats,
    first_words,
    last_words,
    phrase_pattern,
    snippet,
    words,
)

ConstraintKind = Literal[
    "include_word",
    "forbid_word",
    "start_phrase",
    "end_phrase",
    "lowercase",
    "no_commas",
    "question",
    "audience",
    "title",
    "bullets",
    "word_range",
    "bullet_count",
    "paragraph_count",
    "sentence_count",
    "word_repeat",
]

EASY_KINDS: tuple[ConstraintKind, ...] = (
    "include_word",
    "forbid_word",
    "start_phrase",
    "end_phrase",
    "lowercase",
    "no_commas",
    "question",
    "audience",
    "title",
    "bullets",
)
COUNTING_KINDS: tuple[ConstraintKind, ...] = (
    "word_range",
    "bullet_count",
    "paragraph_count",
    "sentence_count",
    "word_repeat",
)
HARD_KINDS: tuple[ConstraintKind, ...] = EASY_KINDS + COUNTING_KINDS

# Pairs that cannot both be asked for (they contradict, or one makes the other ambiguous).
INCOMPATIBLE: frozenset[frozenset[str]] = frozenset(
    frozenset(p)
    for p in [
        ("title", "start_phrase"),
        ("bullets", "bullet_count"),
        ("bullets", "paragraph_count"),
        ("bullet_count", "paragraph_count"),
        ("bullets", "sentence_count"),
        ("bullet_count", "sentence_count"),
        ("title", "paragraph_count"),
        ("title", "sentence_count"),
        ("include_word", "word_repeat"),
    ]
)

TEMPLATES: dict[str, str] = {
    "include_word": 'Include the word "{word}".',
    "forbid_word": 'Do not use the word "{word}".',
    "start_phrase": 'Start your response with "{phrase}".',
    "end_phrase": 'End your response with "{phrase}".',
    "lowercase": "Write everything in lowercase letters.",
    "no_commas": "Do not use any commas.",
    "question": "Include at least one question.",
    "audience": 'Address the reader as "{phrase}".',
    "title": "Begin with a title wrapped in double angular brackets, like <<title>>.",
    "bullets": 'Use a bulleted list with at least two items, each starting with "- ".',
    "word_range": "Use between {lo} and {hi} words.",
    "bullet_count": 'Use exactly {n} bullet points, each starting with "- ".',
    "paragraph_count": "Write exactly {n} paragraphs separated by a blank line.",
    "sentence_count": "Write exactly {n} sentences.",
    "word_repeat": 'Use the word "{word}" at least {n} times.',
}

_FIELD_RE = {
    "word": r"(?P<word>[^\"\n]+)",
    "phrase": r"(?P<phrase>[^\"\n]+)",
    "n": r"(?P<n>\d+)",
    "lo": r"(?P<lo>\d+)",
    "hi": r"(?P<hi>\d+)",
}


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{\w+\})", template)
    rx = "".join(_FIELD_RE[p[1:-1]] if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(rx, re.IGNORECASE)


_PARSERS: dict[str, re.Pattern[str]] = {k: _template_regex(t) for k, t in TEMPLATES.items()}


@dataclass(frozen=True)
class Constraint:
    """One rule of an instruction. Only the fields its kind uses are set."""

    kind: ConstraintKind
    word: str | None = None
    phrase: str | None = None
    n: int | None = None
    lo: int | None = None
    hi: int | None = None

    def render(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if k != "kind" and v is not None}
        return TEMPLATES[self.kind].format(**fields)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Constraint:
        return cls(**d)

    @property
    def counting(self) -> bool:
        return self.kind in COUNTING_KINDS


def parse_constraint(line: str) -> Constraint | None:
    """The rule a line states (without its leading "- "), or None if no template matches."""
    text = line.strip()
    for kind, rx in _PARSERS.items():
        m = rx.fullmatch(text)
        if m:
            g = m.groupdict()
            return Constraint(
                kind=kind,  # type: ignore[arg-type]
                word=g.get("word"),
                phrase=g.get("phrase"),
                n=int(g["n"]) if g.get("n") else None,
                lo=int(g["lo"]) if g.get("lo") else None,
                hi=int(g["hi"]) if g.get("hi") else None,
            )
    return None


def compatible(kinds: list[str], new: str) -> bool:
    return new not in kinds and all(frozenset((k, new)) not in INCOMPATIBLE for k in kinds)


# ----------------------------------------------------------------------------- checks
CheckFn = Callable[[Constraint, TextStats, bool], tuple[bool, str]]
"""(rule, analysed response, exact_counts) -> (passed, evidence)."""


def _q(s: str) -> str:
    return f'"{s}"'


def _include_word(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.word is not None
    m = next(t.find_word(c.word), None)
    if m is None:
        return False, f"{_q(c.word)} does not appear"
    return True, f"{_q(c.word)} appears in {_q(snippet(t.text, m.start(), m.end()))}"


def _forbid_word(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.word is not None
    m = next(t.find_word(c.word), None)
    if m is None:
        return True, f"{_q(c.word)} does not appear"
    return False, f"{_q(c.word)} appears in {_q(snippet(t.text, m.start(), m.end()))}"


def _start_phrase(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.phrase is not None
    want = words(c.phrase)
    ok = t.words[: len(want)] == want
    return ok, f"the response starts with {_q(first_words(t.text, len(want) + 1))}"


def _end_phrase(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.phrase is not None
    want = words(c.phrase)
    ok = len(t.words) >= len(want) and t.words[-len(want) :] == want
    return ok, f"the response ends with {_q(last_words(t.text, len(want) + 1))}"


def _lowercase(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    i = next((i for i, ch in enumerate(t.text) if ch.isupper()), None)
    if i is None:
        return True, "no capital letters"
    return False, f"capital letter in {_q(snippet(t.text, i, i + 1, context=1))}"


def _no_commas(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    m = re.search(r"[,，]", t.text)
    if m is None:
        return True, "no commas"
    return False, f"comma in {_q(snippet(t.text, m.start(), m.end(), context=1))}"


def _question(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    for s in t.sentences:
        if s.endswith("?") and len(WORD_RE.findall(s)) >= 3:
            return True, f"asks {_q(' '.join(s.split())[:80])}"
    return False, "no question (no sentence ending with a question mark)"


def _audience(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.phrase is not None
    m = phrase_pattern(c.phrase).search(t.text)
    if m is None:
        return False, f"{_q(c.phrase)} is never named"
    return True, f"{_q(c.phrase)} appears in {_q(snippet(t.text, m.start(), m.end()))}"


_TITLE_RE = re.compile(r"<<\s*([^<>\n]+?)\s*>>")


def _title(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    first = t.lines[0].strip() if t.lines else ""
    m = _TITLE_RE.fullmatch(first)
    ok = m is not None and 1 <= len(WORD_RE.findall(m.group(1))) <= 15
    return ok, f"the first line is {_q(first[:80])}"


def _bullets(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    b = t.bullet_lines
    if len(b) >= 2:
        return True, f"a bulleted list, first item {_q(b[0][:60])}"
    if len(b) == 1:
        return False, f"only one bullet item, {_q(b[0][:60])}"
    return False, "no bulleted list"


def _word_range(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.lo is not None and c.hi is not None
    n = t.n_words
    return c.lo <= n <= c.hi, f"{n} words, asked {c.lo} to {c.hi}"


def _bullet_count(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.n is not None
    n = len(t.bullet_lines)
    return n == c.n, f"{n} bullet points, asked {c.n}"


def _paragraph_count(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.n is not None
    n = len(t.paragraphs)
    return n == c.n, f"{n} paragraphs, asked {c.n}"


def _sentence_count(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.n is not None
    n = len(t.sentences)
    return n == c.n, f"{n} sentences, asked {c.n}"


def _word_repeat(c: Constraint, t: TextStats, exact: bool) -> tuple[bool, str]:
    assert c.word is not None and c.n is not None
    n = sum(1 for _ in t.find_word(c.word))
    return n >= c.n, f"{_q(c.word)} appears {n} times, asked at least {c.n}"


CHECKS: dict[str, CheckFn] = {
    "include_word": _include_word,
    "forbid_word": _forbid_word,
    "start_phrase": _start_phrase,
    "end_phrase": _end_phrase,
    "lowercase": _lowercase,
    "no_commas": _no_commas,
    "question": _question,
    "audience": _audience,
    "title": _title,
    "bullets": _bullets,
    "word_range": _word_range,
    "bullet_count": _bullet_count,
    "paragraph_count": _paragraph_count,
    "sentence_count": _sentence_count,
    "word_repeat": _word_repeat,
}


def check_constraint(c: Constraint, t: TextStats, *, exact_counts: bool = False) -> tuple[bool, str]:
    """Whether the response meets rule ``c``, and the evidence quoted from the response."""
    return CHECKS[c.kind](c, t, exact_counts)


__all__ = [
    "CHECKS",
    "COUNTING_KINDS",
    "EASY_KINDS",
    "HARD_KINDS",
    "INCOMPATIBLE",
    "TEMPLATES",
    "Constraint",
    "ConstraintKind",
    "check_constraint",
    "compatible",
    "parse_constraint",
]
