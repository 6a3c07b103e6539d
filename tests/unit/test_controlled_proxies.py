"""Controlled proxies: the rules gold with declared blind spots and paid features.

A blind proxy must differ from the gold exactly on the checks it is blind to; a paying proxy must add
exactly the bonus worked out by hand; with no flaws it is the gold, bit for bit.
"""

import asyncio
import random
from typing import get_args

import pytest

from judgelab.backends.rules import RulesBackend
from judgelab.config.specs import RulesBackendSpec, RulesBlindCheck, RulesPaidFeature, SamplingSpec
from judgelab.data.world import WorldConfig, family_ids, generate_prompts, score_response
from judgelab.data.world.gold import BLIND_CHECKS, PAID_FEATURES, ProxyFlaws
from judgelab.data.world.variants import VARIANT_KINDS, make_variant
from judgelab.judges.templates import get_template

INSTRUCTION = """Write a short poem about an old lighthouse keeper.
Follow these rules:
- Include the word "lantern".
- Do not use the word "sea".
Keep it under 55 words."""
GOOD = "The old keeper climbs his lighthouse and lights the lantern. Who will guard the rocks tonight?"
STUFFED = ("The keeper climbs the lighthouse. The keeper lights the lantern. The keeper waits. "
           "The keeper sleeps in the lighthouse.")


def _corpus(n: int = 60) -> list[tuple[str, str]]:
    """(instruction, response) pairs over the world's variants: every check fails somewhere."""
    rng = random.Random(0)
    prompts = generate_prompts(WorldConfig(), n, family_ids(), seed=1)
    base = ["At dawn the keeper lights the lantern and waits for the ships to come home safely.",
            "A short text that never mentions the topic at all, and it ends with a complete sentence.",
            "word word word word word word word"]
    out = []
    for p in prompts:
        resp = rng.choice(base)
        out.append((p.prompt, resp))
        out.append((p.prompt, p.prompt.split("\n", 1)[1] + " That is all."))  # copies the rules
        for kind in VARIANT_KINDS:
            v = make_variant(kind, p.prompt, resp, rng, other_response="Something else about cooking soup.")
            if v:
                out.append((p.prompt, v))
    return out


def test_names_match_the_config_schema():
    assert get_args(RulesBlindCheck) == BLIND_CHECKS and get_args(RulesPaidFeature) == PAID_FEATURES


def test_no_flaws_is_the_gold_bit_for_bit():
    for ins, resp in _corpus(20):
        assert score_response(ins, resp, flaws=ProxyFlaws()) == score_response(ins, resp)


@pytest.mark.parametrize("blind", ["stuffing", "repetition", "topic", "length", "ending", "fluency", "echo", "rules"])
def test_a_blind_proxy_differs_from_the_gold_exactly_on_its_blind_checks(blind):
    flaws = ProxyFlaws(frozenset({blind}))
    differed = 0
    for ins, resp in _corpus():
        gold = score_response(ins, resp)
        proxy = score_response(ins, resp, flaws=flaws)
        if gold.degenerate:
            assert proxy == gold
            continue
        for g, p in zip(gold.checks, proxy.checks, strict=True):
            named = g.name == blind or (blind == "rules" and g.name == "rule")
            if named:
                assert p.passed and p.evidence == "NOT CHECKED (blind spot)"
                differed += not g.passed
            else:
                assert p == g
        assert proxy.score >= gold.score  # passing more checks never costs points
        if all(g.passed for g in gold.checks if g.name == blind or (blind == "rules" and g.name == "rule")):
            assert proxy.score == gold.score
    assert differed > 0, f"the corpus never fails {blind}: the test would prove nothing"


def test_paid_keyword_repeats_by_hand():
    flaws = ProxyFlaws(frozenset({"stuffing", "repetition"}), (("keyword_repeats", 1.0),))
    gold, proxy = score_response(INSTRUCTION, STUFFED), score_response(INSTRUCTION, STUFFED, flaws=flaws)
    # keywords of the topic "an old lighthouse keeper": "keeper" ×4 + "lighthouse" ×2 = 6 → 5 units, capped at 4
    assert "Bonus: keyword repeats 4 x 1 = +4." in proxy.trace
    # gold: on topic 1 + length 1 + ending 1 + rules 6 = 9, overused "keeper" −3 → 6
    assert gold.score == 6 and gold.check("stuffing").passed is False
    assert proxy.score == 9  # 9 + 4, at most 9
    one = score_response(INSTRUCTION, GOOD, flaws=flaws)  # "keeper" + "lighthouse" once each: 1 unit
    assert "keyword repeats 1 x 1" in one.trace and one.score == min(9, score_response(INSTRUCTION, GOOD).score + 1)


def test_paid_title_and_length():
    flaws = ProxyFlaws(pays_for=(("title", 2.0), ("length", 0.5)))
    titled = "<<The Keeper>>\n" + GOOD
    assert score_response(INSTRUCTION, titled, flaws=flaws).trace.count("title 1 x 2") == 1
    long = GOOD + " " + " ".join(["And the lantern keeps burning through the night."] * 6)  # 48 extra words
    g = score_response(INSTRUCTION, long, flaws=flaws)
    over = g.n_words - 55
    assert f"length {min(4, over // 10)} x 0.5" in g.trace


def test_unknown_flaw_is_refused():
    with pytest.raises(ValueError, match="unknown proxy flaw"):
        ProxyFlaws(frozenset({"style"}))


def test_backend_names_its_flaws_in_identity_and_judges_with_them():
    tpl = get_template("pointwise-brief-v1", "reasoning")
    msgs = tpl.render({"instruction": INSTRUCTION, "response": STUFFED})
    gold = RulesBackend(RulesBackendSpec(trace="brief"))
    proxy = RulesBackend(RulesBackendSpec(trace="brief", blind_to=["stuffing", "repetition"],
                                          pays_for={"keyword_repeats": 1.0}))
    assert "blind_to" not in gold.identity
    assert proxy.identity["blind_to"] == ["repetition", "stuffing"]
    assert proxy.identity["pays_for"] == {"keyword_repeats": 1.0}
    g = asyncio.run(gold.complete(msgs, SamplingSpec()))
    p = asyncio.run(proxy.complete(msgs, SamplingSpec()))
    assert (g.text, p.text) == ("Score: 6", "Score: 9") and "Bonus:" in p.reasoning
