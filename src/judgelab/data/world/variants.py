"""Rewritten copies of a sampled response that spread the gold score (the judge-data mix).

A small policy's own samples sit low on the gold scale (SmolLM2-135M: mean ≈ 2.7 of 9, almost no
8s and 9s), so a proxy judge trained only on them never sees what a good response looks like,
and a policy trained against that judge gets no direction towards one. The synthetic world knows
its rules, so it can rewrite a sample into copies at other quality levels — the way the paper's
judge data mixes responses of many policies:

- ``fixed``: every rule repaired (word inserted or removed, start/end phrase, lowercase, commas,
  question, name, title, list) and trimmed under the length limit — usually 8–9;
- ``partial``: a random subset of the rules repaired — the middle of the scale;
- ``truncated``: cut off mid-sentence (no complete ending, often too short);
- ``stuffed``: topic keywords sprinkled through the text (the overused-word penalty);
- ``repeated``: a sentence repeated (the repetition penalty);
- ``off_topic``: another instruction's response (off-topic cap, most rules failed).

Which rewrite a copy got goes into the record's ``meta.variant``; its score always comes from
the gold judge afterwards, never from here. Rewrites are deterministic given the ``random.Random``.
Counting rules of the ``hard`` world (word ranges, exact counts) are not repaired.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Literal

from judgelab.data.world.constraints import Constraint
from judgelab.data.world.instruction import Instruction, parse_instruction

VariantKind = Literal["fixed", "partial", "truncated", "stuffed", "repeated", "off_topic"]
VARIANT_KINDS: tuple[VariantKind, ...] = ("fixed", "partial", "truncated", "stuffed", "repeated", "off_topic")

# repair order: content edits first, then case/commas, then the prefix and suffix rules
_ORDER = {"forbid_word": 0, "bullets": 0, "include_word": 1, "question": 1, "lowercase": 3,
          "no_commas": 3, "audience": 4, "start_phrase": 5, "end_phrase": 5, "title": 6}
_INSERTS = ("Think of the {w}.", "The {w} matters here.", "And then there was the {w}.", "Nobody forgot the {w}.")
_QUESTIONS = ("Isn't that wonderful?", "Who could ask for more?", "What would you do?", "Can you imagine it?")
_GREETINGS = ("Dear {p}, ", "{p}, listen. ", "Hello {p}! ")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def _insert_sentence(text: str, sentence: str, rng: random.Random) -> str:
    ss = _sentences(text)
    j = rng.randrange(len(ss) + 1)
    return " ".join([*ss[:j], sentence, *ss[j:]])


def _repair(text: str, c: Constraint, ins: Instruction, rng: random.Random) -> str:
    k = c.kind
    if k == "include_word" and c.word:
        return _insert_sentence(text, rng.choice(_INSERTS).format(w=c.word), rng)
    if k == "forbid_word" and c.word:
        return re.sub(rf"\b{re.escape(c.word)}(s|es|'s)?\b", "it", text, flags=re.IGNORECASE)
    if k == "start_phrase" and c.phrase:
        return f"{c.phrase} {text.lstrip()}"
    if k == "end_phrase" and c.phrase:
        return f"{text.rstrip()} {c.phrase}"
    if k == "lowercase":
        return text.lower()
    if k == "no_commas":
        return text.replace(",", "")
    if k == "question":
        return _insert_sentence(text, rng.choice(_QUESTIONS), rng)
    if k == "audience" and c.phrase:
        return rng.choice(_GREETINGS).format(p=c.phrase) + text.lstrip()
    if k == "title":
        return f"<<{ins.topic.title()}>>\n{text.lstrip()}"
    if k == "bullets":
        ss = _sentences(text)[:4]
        return "\n".join("- " + s for s in ss) if len(ss) >= 2 else f"{text}\n- one\n- two"
    return text  # counting rules (hard world) are left alone


def _trim(text: str, max_words: int | None, margin: int = 12) -> str:
    """Whole sentences up to ``max_words - margin`` words (room for the repairs' insertions)."""
    if not max_words:
        return text
    budget = max(1, max_words - margin)
    out: list[str] = []
    for s in _sentences(text):
        if len(" ".join([*out, s]).split()) > budget:
            break
        out.append(s)
    return " ".join(out) if out else " ".join(text.split()[:budget])


def _repaired(text: str, ins: Instruction, kinds: set[str] | None, rng: random.Random) -> str:
    t = _trim(text, ins.max_words)
    for c in sorted(ins.constraints, key=lambda c: _ORDER.get(c.kind, 2)):
        if kinds is None or c.kind in kinds:
            t = _repair(t, c, ins, rng)
    if any(c.kind == "lowercase" for c in ins.constraints) and (kinds is None or "lowercase" in kinds):
        t = t.lower()  # later repairs may have added capitals
    return t


def make_variant(
    kind: VariantKind,
    instruction: str | Instruction,
    response: str,
    rng: random.Random,
    *,
    other_response: str | None = None,
) -> str | None:
    """One rewritten copy of ``response``; None when ``kind`` cannot apply (``off_topic``
    without ``other_response``, ``partial`` for an instruction without rules)."""
    ins = parse_instruction(instruction) if isinstance(instruction, str) else instruction
    if kind == "fixed":
        return _repaired(response, ins, None, rng)
    if kind == "partial":
        kinds = [c.kind for c in ins.constraints]
        if not kinds:
            return None
        subset = set(rng.sample(kinds, rng.randint(0, len(kinds) - 1))) if len(kinds) > 1 else set()
        return _repaired(response, ins, subset, rng)
    if kind == "truncated":
        w = response.split()
        return " ".join(w[: max(3, int(len(w) * rng.uniform(0.2, 0.6)))])
    if kind == "stuffed":
        w = response.split()
        kw = (ins.keywords or (ins.topic.split()[-1],))[0]
        for _ in range(rng.randint(4, 8)):
            w.insert(rng.randrange(len(w) + 1), kw)
        return " ".join(w)
    if kind == "repeated":
        ss = _sentences(response)
        if not ss:
            return None
        s = rng.choice(ss)
        return " ".join([*ss, s, s])
    if kind == "off_topic":
        return other_response
    raise ValueError(f"unknown variant kind {kind!r}")


def make_variants(
    kinds: Sequence[VariantKind],
    instruction: str,
    response: str,
    rng: random.Random,
    *,
    other_response: str | None = None,
) -> list[tuple[VariantKind, str]]:
    """``(kind, text)`` for each kind that applies and changes the text."""
    ins = parse_instruction(instruction)
    out: list[tuple[VariantKind, str]] = []
    for kind in kinds:
        text = make_variant(kind, ins, response, rng, other_response=other_response)
        if text is not None and text != response:
            out.append((kind, text))
    return out


__all__ = ["VARIANT_KINDS", "VariantKind", "make_variant", "make_variants"]
