"""Procedural instruction generator: topic × genre × 1–4 checkable rules, seeded.

``generate_prompts(cfg, n, families, seed)`` draws ``n`` distinct instructions whose topics come
from ``families`` (topic ids), so the caller can keep train and test families apart. The same
arguments always give the same prompts, in the same order (``random.Random`` seeded with a
string, which does not depend on ``PYTHONHASHSEED``).

The length limit written into every instruction comes from the policy's token budget
(``response_token_budget`` × ``words_per_token``, rounded down to a multiple of 5), so a policy
that samples at most that many tokens can meet it, and a response cut off by the budget loses
its *complete ending* point instead of gaining length.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from judgelab.config.specs import StrictModel
from judgelab.data.records import Record, prompt_hash, stable_id
from judgelab.data.world.constraints import (
    EASY_KINDS,
    HARD_KINDS,
    Constraint,
    ConstraintKind,
    compatible,
)
from judgelab.data.world.instruction import Instruction, min_words_for
from judgelab.data.world.text import word_pattern, words
from judgelab.data.world.vocab import (
    AUDIENCES,
    END_PHRASES,
    GENRES,
    REQUIRED_WORDS,
    START_PHRASES,
    TOPICS,
    TOPICS_BY_ID,
    Topic,
)
from judgelab.errors import DataError

WorldVariant = Literal["easy", "hard"]


class WorldConfig(StrictModel):
    """The synthetic world's knobs. Defaults are the laptop-scale ``easy`` world."""

    world: WorldVariant = Field(
        "easy", description="easy: rules visible in the text; hard: adds counting rules (GPU scale)"
    )
    min_constraints: int = Field(1, ge=1, le=4)
    max_constraints: int = Field(4, ge=1, le=5)
    response_token_budget: int = Field(
        96, ge=16, description="the policy's max new tokens; the instruction's word limit derives from it"
    )
    words_per_token: float = Field(
        0.6, gt=0.1, le=1.5, description="word limit = budget × this (SmolLM2 ≈ 1.3–1.5 tokens/word)"
    )
    kinds: list[ConstraintKind] | None = Field(
        None, description="rule kinds to draw from; None = all kinds of the chosen world"
    )

    @model_validator(mode="after")
    def _check(self) -> WorldConfig:
        if self.min_constraints > self.max_constraints:
            raise ValueError(
                f"min_constraints={self.min_constraints} > max_constraints={self.max_constraints}; "
                "make min ≤ max"
            )
        if self.kinds is not None and len(set(self.kinds)) < self.max_constraints:
            raise ValueError(
                f"kinds lists {len(set(self.kinds))} distinct kinds but max_constraints="
                f"{self.max_constraints}; list more kinds or lower max_constraints"
            )
        return self

    @property
    def max_words(self) -> int:
        return max(10, 5 * int(self.response_token_budget * self.words_per_token / 5))

    @property
    def min_words(self) -> int:
        return min_words_for(self.max_words)

    def allowed_kinds(self) -> tuple[ConstraintKind, ...]:
        if self.kinds is not None:
            return tuple(dict.fromkeys(self.kinds))
        return EASY_KINDS if self.world == "easy" else HARD_KINDS


def family_ids() -> list[str]:
    """Every topic id (prompt family) of the world, in table order."""
    return [t.id for t in TOPICS]


def _topic_words(topic: Topic) -> set[str]:
    return set(topic.keywords) | set(topic.tempting) | set(words(topic.phrase))


def _draw_constraint(kind: ConstraintKind, topic: Topic, cfg: WorldConfig, rng: random.Random, used_words: set[str]) -> Constraint:
    if kind in ("include_word", "word_repeat"):
        pool = [w for w in REQUIRED_WORDS if w not in used_words and w not in _topic_words(topic)]
        word = rng.choice(pool)
        used_words.add(word)
        if kind == "word_repeat":
            return Constraint(kind, word=word, n=rng.choice((2, 3)))
        return Constraint(kind, word=word)
    if kind == "forbid_word":
        pool = [w for w in topic.tempting if w not in used_words]
        word = rng.choice(pool)
        used_words.add(word)
        return Constraint(kind, word=word)
    if kind == "start_phrase":
        return Constraint(kind, phrase=rng.choice(START_PHRASES))
    if kind == "end_phrase":
        return Constraint(kind, phrase=rng.choice(END_PHRASES))
    if kind == "audience":
        return Constraint(kind, phrase=rng.choice(AUDIENCES))
    if kind == "word_range":
        lo_min, hi_max = cfg.min_words, cfg.max_words
        width = min(hi_max - lo_min, rng.choice((10, 15, 20)))
        lo = rng.randint(lo_min, hi_max - width)
        lo = max(lo_min, 5 * round(lo / 5))
        return Constraint(kind, lo=lo, hi=min(hi_max, lo + width))
    if kind == "bullet_count":
        return Constraint(kind, n=rng.randint(2, 4))
    if kind == "paragraph_count":
        return Constraint(kind, n=rng.randint(2, 3))
    if kind == "sentence_count":
        return Constraint(kind, n=rng.randint(2, max(2, min(5, cfg.max_words // 10))))
    return Constraint(kind)


def _self_contradictory(constraints: Sequence[Constraint]) -> bool:
    """A forbidden word that another rule's phrase (start, end, audience) would force in."""
    forbidden = [c.word for c in constraints if c.kind == "forbid_word" and c.word]
    phrases = [c.phrase for c in constraints if c.phrase]
    return any(word_pattern(w).search(p) for w in forbidden for p in phrases)


def draw_instruction(cfg: WorldConfig, topic: Topic, rng: random.Random) -> Instruction:
    """One random instruction about ``topic``."""
    genre = rng.choice(GENRES)
    k = rng.randint(cfg.min_constraints, cfg.max_constraints)
    pool = list(cfg.allowed_kinds())
    rng.shuffle(pool)
    kinds: list[ConstraintKind] = []
    for kind in pool:
        if len(kinds) == k:
            break
        if compatible(list(kinds), kind):
            kinds.append(kind)
    for _ in range(100):
        used: set[str] = set()
        constraints = tuple(_draw_constraint(kind, topic, cfg, rng, used) for kind in kinds)
        if not _self_contradictory(constraints):
            break
    else:  # pragma: no cover - the vocabulary makes this practically impossible
        raise DataError(f"could not draw consistent rules for topic {topic.id!r}")
    return Instruction(
        genre=genre,
        topic=topic.phrase,
        constraints=constraints,
        max_words=cfg.max_words,
        topic_id=topic.id,
        keywords=topic.keywords,
    )


def instruction_record(ins: Instruction, cfg: WorldConfig) -> Record:
    text = ins.render()
    return Record(
        id=stable_id(f"syn-{cfg.world}", prompt_hash(text)),
        prompt=text,
        source=f"synthetic:{cfg.world}",
        meta={
            "family": ins.topic_id,
            "genre": ins.genre,
            "world": cfg.world,
            "constraints": [c.to_dict() for c in ins.constraints],
            "max_words": ins.max_words,
        },
    )


def generate_prompts(
    cfg: WorldConfig,
    n: int,
    families: Sequence[str],
    seed: int | str,
    *,
    exclude_hashes: set[str] | None = None,
    max_attempts_factor: int = 50,
) -> list[Record]:
    """``n`` distinct instruction records about topics in ``families``.

    ``exclude_hashes`` (prompt hashes) are never produced, so a second call can add prompts
    disjoint from a first one. ``DataError`` when the families cannot yield ``n`` distinct ones.
    """
    unknown = [f for f in families if f not in TOPICS_BY_ID]
    if unknown:
        raise DataError(f"unknown synthetic-world families: {unknown[:5]}", "use ids from family_ids()")
    if n > 0 and not families:
        raise DataError("no families to draw prompts from", "give at least one topic id")
    topics = [TOPICS_BY_ID[f] for f in sorted(set(families))]
    rng = random.Random(f"judgelab-world:{cfg.world}:{seed}")
    seen = set(exclude_hashes or ())
    out: list[Record] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > max_attempts_factor * max(n, 1):
            raise DataError(
                f"could only draw {len(out)} distinct synthetic prompts of the {n} asked from "
                f"{len(topics)} families",
                "ask for fewer prompts, allow more constraints per prompt, or use more families",
            )
        topic = topics[rng.randrange(len(topics))]
        rec = instruction_record(draw_instruction(cfg, topic, rng), cfg)
        h = rec.prompt_hash
        if h in seen:
            continue
        seen.add(h)
        out.append(rec)
    return out


__all__ = [
    "WorldConfig",
    "WorldVariant",
    "draw_instruction",
    "family_ids",
    "generate_prompts",
    "instruction_record",
]
