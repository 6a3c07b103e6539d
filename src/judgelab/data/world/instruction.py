"""Synthetic-world instructions: rendering and parsing back.

An instruction reads::

    Write a short poem about an old lighthouse keeper.
    Follow these rules:
    - Include the word "lantern".
    - Do not use the word "sea".
    Keep it under 55 words.

The first line names the genre and the topic; each rule line is one ``Constraint`` template; the
last line is the length limit, derived from the policy's token budget (``WorldConfig``).
``parse_instruction`` is strict: a line it does not recognise is an error, so the checklist gold
never silently judges against a partial reading of the instruction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from judgelab.data.world.constraints import Constraint, parse_constraint
from judgelab.data.world.text import STOPWORDS, words
from judgelab.data.world.vocab import GENRES, TOPICS_BY_PHRASE
from judgelab.errors import DataError

RULES_HEADER = "Follow these rules:"
_LENGTH_RE = re.compile(r"Keep it under (\d+) words\.", re.IGNORECASE)
_FIRST_RE = re.compile(r"Write (?P<genre>an? .+?) about (?P<topic>.+?)\.", re.IGNORECASE)


class InstructionParseError(DataError):
    """The text is not a synthetic-world instruction the checklist gold can read."""


@dataclass(frozen=True)
class Instruction:
    genre: str
    topic: str
    constraints: tuple[Constraint, ...]
    max_words: int | None = None
    topic_id: str | None = None
    keywords: tuple[str, ...] = ()

    def render(self) -> str:
        lines = [f"Write {self.genre} about {self.topic}."]
        if self.constraints:
            lines.append(RULES_HEADER)
            lines.extend(f"- {c.render()}" for c in self.constraints)
        if self.max_words is not None:
            lines.append(f"Keep it under {self.max_words} words.")
        return "\n".join(lines)

    @property
    def min_words(self) -> int:
        """Shorter than this is *too short* (a fixed rule of the world, derived from the limit)."""
        return min_words_for(self.max_words)

    def rule_lines(self) -> list[str]:
        return [c.render() for c in self.constraints]


def min_words_for(max_words: int | None) -> int:
    """12 words, or a third of the limit when the limit is small."""
    if max_words is None:
        return 12
    return max(3, min(12, max_words // 3))


def topic_keywords(topic: str) -> tuple[str | None, tuple[str, ...]]:
    """(topic id, keywords) from the world's topic table; unknown topics use their content words."""
    t = TOPICS_BY_PHRASE.get(topic.casefold().strip())
    if t is not None:
        return t.id, t.keywords
    content = tuple(dict.fromkeys(w for w in words(topic) if w not in STOPWORDS and len(w) >= 3))
    return None, content


def parse_instruction(text: str) -> Instruction:
    """Read an instruction back into genre, topic, rules and length limit (strict)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise InstructionParseError("the instruction is empty", "the rules judge needs a synthetic-world instruction")
    first = lines[0]
    genre = topic = None
    for g in GENRES:
        prefix = f"Write {g} about "
        if first.casefold().startswith(prefix.casefold()) and first.endswith("."):
            genre, topic = g, first[len(prefix) : -1]
            break
    if genre is None:
        m = _FIRST_RE.fullmatch(first)
        if m is None:
            raise InstructionParseError(
                f"not a synthetic-world instruction: first line {first[:80]!r} does not read "
                "'Write <genre> about <topic>.'",
                "the rules backend judges only instructions made by the synthetic world "
                "(judgelab.data.world); use an LLM judge for other prompts",
            )
        genre, topic = m.group("genre"), m.group("topic")
    constraints: list[Constraint] = []
    max_words: int | None = None
    for ln in lines[1:]:
        if ln.casefold() == RULES_HEADER.casefold():
            continue
        m = _LENGTH_RE.fullmatch(ln)
        if m:
            max_words = int(m.group(1))
            continue
        if ln.startswith(("- ", "* ")):
            c = parse_constraint(ln[2:])
            if c is not None:
                constraints.append(c)
                continue
        raise InstructionParseError(
            f"instruction line not understood: {ln[:80]!r}",
            "rule lines must use the world's templates (judgelab.data.world.constraints.TEMPLATES)",
        )
    topic_id, keywords = topic_keywords(topic)
    return Instruction(
        genre=genre,
        topic=topic,
        constraints=tuple(constraints),
        max_words=max_words,
        topic_id=topic_id,
        keywords=keywords,
    )


__all__ = [
    "RULES_HEADER",
    "Instruction",
    "InstructionParseError",
    "min_words_for",
    "parse_instruction",
    "topic_keywords",
]
