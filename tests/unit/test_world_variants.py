"""World variants: each rewrite does what its name says, checked by the gold's own checks."""

import random

import pytest

from judgelab.data.world import score_response
from judgelab.data.world.variants import VARIANT_KINDS, make_variant, make_variants

INSTRUCTION = """Write a short poem about an old lighthouse keeper.
Follow these rules:
- Include the word "lantern".
- Do not use the word "sea".
- Start your response with "At dawn".
- Include at least one question.
Keep it under 55 words."""

# on topic, but breaks all four rules (no lantern, says sea, wrong start, no question)
PLAIN = (
    "The old keeper of the lighthouse watches the sea every night. He climbs the stairs and "
    "thinks about the ships. The wind is cold and the waves are loud."
)
OTHER = "Bread rises slowly in a warm kitchen while the baker hums an old tune to the dough."


def _rules(text):
    g = score_response(INSTRUCTION, text)
    return [c.passed for c in g.checks if c.name == "rule"], g


def test_fixed_repairs_every_rule_and_scores_high():
    before, g0 = _rules(PLAIN)
    assert not any(before)
    text = make_variant("fixed", INSTRUCTION, PLAIN, random.Random(0))
    after, g1 = _rules(text)
    assert all(after) and text.startswith("At dawn") and "sea" not in text.lower().split()
    assert g1.score >= 8 > g0.score


def test_partial_repairs_a_strict_subset():
    counts = set()
    for seed in range(20):
        text = make_variant("partial", INSTRUCTION, PLAIN, random.Random(seed))
        met, _ = _rules(text)
        counts.add(sum(met))
    assert counts <= {0, 1, 2, 3} and len(counts) >= 2  # never all four, and not always the same


@pytest.mark.parametrize("kind,check", [("repeated", "repetition"), ("stuffed", "stuffing")])
def test_degradations_trip_the_gold_penalty(kind, check):
    text = make_variant(kind, INSTRUCTION, PLAIN, random.Random(1))
    g = score_response(INSTRUCTION, text)
    assert not g.check(check).passed and g.score < score_response(INSTRUCTION, PLAIN).score


def test_truncated_is_a_prefix_and_off_topic_is_the_other_response():
    rng = random.Random(2)
    t = make_variant("truncated", INSTRUCTION, PLAIN, rng)
    assert PLAIN.startswith(t) and len(t.split()) < len(PLAIN.split())
    assert make_variant("off_topic", INSTRUCTION, PLAIN, rng, other_response=OTHER) == OTHER
    assert make_variant("off_topic", INSTRUCTION, PLAIN, rng) is None


def test_make_variants_is_deterministic_and_skips_unchanged():
    a = make_variants(VARIANT_KINDS, INSTRUCTION, PLAIN, random.Random(5), other_response=OTHER)
    b = make_variants(VARIANT_KINDS, INSTRUCTION, PLAIN, random.Random(5), other_response=OTHER)
    assert a == b and [k for k, _ in a] == list(VARIANT_KINDS)
    assert all(t != PLAIN for _, t in a)
