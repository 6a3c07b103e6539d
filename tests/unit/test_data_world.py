"""The synthetic world's generator: seeded, parseable, families respected, no contradictions."""

import itertools

import pytest
from pydantic import ValidationError

from judgelab.data.world import (
    COUNTING_KINDS,
    EASY_KINDS,
    WorldConfig,
    family_ids,
    generate_prompts,
    parse_instruction,
)
from judgelab.data.world.constraints import INCOMPATIBLE, TEMPLATES, Constraint, parse_constraint
from judgelab.data.world.instruction import InstructionParseError
from judgelab.data.world.text import word_pattern
from judgelab.data.world.vocab import REQUIRED_WORDS, TOPICS, TOPICS_BY_ID
from judgelab.errors import DataError


def test_vocab_is_consistent():
    assert len(TOPICS) >= 100 and len({t.phrase.casefold() for t in TOPICS}) == len(TOPICS)
    for t in TOPICS:
        assert t.keywords and len(t.tempting) >= 2, t.id
        assert not set(t.keywords) & set(t.tempting), t.id
    assert len(set(REQUIRED_WORDS)) == len(REQUIRED_WORDS)


def test_reproducible_and_seed_dependent():
    cfg = WorldConfig()
    a = generate_prompts(cfg, 50, family_ids(), seed=7)
    assert [r.prompt for r in a] == [r.prompt for r in generate_prompts(cfg, 50, family_ids(), seed=7)]
    assert [r.id for r in a] == [r.id for r in generate_prompts(cfg, 50, family_ids(), seed=7)]
    assert [r.prompt for r in a] != [r.prompt for r in generate_prompts(cfg, 50, family_ids(), seed=8)]
    assert len({r.prompt_hash for r in a}) == 50


@pytest.mark.parametrize("world", ["easy", "hard"])
def test_instructions_parse_back_exactly(world):
    cfg = WorldConfig(world=world, response_token_budget=200)
    for r in generate_prompts(cfg, 300, family_ids(), seed=world):
        ins = parse_instruction(r.prompt)
        assert ins.render() == r.prompt
        assert [c.to_dict() for c in ins.constraints] == r.meta["constraints"]
        assert ins.topic_id == r.meta["family"] and ins.max_words == cfg.max_words
        assert 1 <= len(ins.constraints) <= 4


def test_easy_has_no_counting_rules_hard_has_them():
    easy = generate_prompts(WorldConfig(), 400, family_ids(), seed=0)
    kinds = {c["kind"] for r in easy for c in r.meta["constraints"]}
    assert kinds == set(EASY_KINDS)
    hard = generate_prompts(WorldConfig(world="hard"), 400, family_ids(), seed=0)
    hard_kinds = {c["kind"] for r in hard for c in r.meta["constraints"]}
    assert set(COUNTING_KINDS) <= hard_kinds


def test_no_contradictory_rules():
    for r in generate_prompts(WorldConfig(world="hard"), 600, family_ids(), seed=1):
        cs = [Constraint.from_dict(c) for c in r.meta["constraints"]]
        kinds = [c.kind for c in cs]
        assert len(set(kinds)) == len(kinds)
        for a, b in itertools.combinations(kinds, 2):
            assert frozenset((a, b)) not in INCOMPATIBLE
        topic = TOPICS_BY_ID[r.meta["family"]]
        for c in cs:
            if c.kind in ("include_word", "word_repeat"):
                assert c.word not in topic.keywords and c.word not in topic.tempting
            if c.kind == "forbid_word":
                assert c.word in topic.tempting
                for other in cs:
                    if other.phrase:
                        assert not word_pattern(c.word).search(other.phrase), (c, other)
            if c.kind == "word_range":
                assert WorldConfig(world="hard").min_words <= c.lo < c.hi <= WorldConfig(world="hard").max_words


def test_families_are_respected():
    fams = family_ids()[:5]
    recs = generate_prompts(WorldConfig(), 40, fams, seed=0)
    assert {r.meta["family"] for r in recs} <= set(fams)
    excluded = {r.prompt_hash for r in recs}
    more = generate_prompts(WorldConfig(), 40, fams, seed=0, exclude_hashes=excluded)
    assert not excluded & {r.prompt_hash for r in more}
    with pytest.raises(DataError, match="unknown synthetic-world families"):
        generate_prompts(WorldConfig(), 1, ["not_a_topic"], seed=0)
    with pytest.raises(DataError, match="could only draw"):
        generate_prompts(WorldConfig(min_constraints=1, max_constraints=1, kinds=["lowercase"]), 20, fams[:1], seed=0)


def test_length_limit_follows_the_token_budget():
    assert WorldConfig(response_token_budget=96).max_words == 55
    assert WorldConfig(response_token_budget=64).max_words == 35
    assert WorldConfig(response_token_budget=512).max_words == 305
    assert WorldConfig(response_token_budget=64).min_words == 11
    r = generate_prompts(WorldConfig(response_token_budget=64), 1, family_ids(), seed=0)[0]
    assert r.prompt.endswith("Keep it under 35 words.")


def test_config_validation():
    with pytest.raises(ValidationError, match="min_constraints=3 > max_constraints=2"):
        WorldConfig(min_constraints=3, max_constraints=2)
    with pytest.raises(ValidationError, match="distinct kinds"):
        WorldConfig(kinds=["lowercase"], max_constraints=2)
    with pytest.raises(ValidationError):
        WorldConfig(world="medium")


def test_every_template_parses_back():
    examples = {"word": "lantern", "phrase": "At dawn", "n": 3, "lo": 20, "hi": 35}
    for kind, template in TEMPLATES.items():
        fields = {k: v for k, v in examples.items() if "{" + k + "}" in template}
        c = Constraint(kind, **fields)
        assert parse_constraint(c.render()) == c
    assert parse_constraint("Write a sonnet.") is None


def test_parse_errors_are_clear():
    with pytest.raises(InstructionParseError, match="not a synthetic-world instruction"):
        parse_instruction("Explain quantum computing to a child.")
    with pytest.raises(InstructionParseError, match="line not understood: '- Rhyme every line.'"):
        parse_instruction("Write a short poem about a quiet library.\nFollow these rules:\n- Rhyme every line.")
    ins = parse_instruction("Write an ode about the lonely moons of Jupiter.")
    assert ins.topic_id is None and ins.keywords == ("lonely", "moons", "jupiter") and ins.max_words is None
