"""The checklist gold on hand-written responses, and its arithmetic re-derived independently."""

import itertools
import math

import pytest

from judgelab.data.world import compare_responses, score_response
from judgelab.data.world.instruction import InstructionParseError

INSTRUCTION = """Write a short poem about an old lighthouse keeper.
Follow these rules:
- Include the word "lantern".
- Do not use the word "sea".
- Start your response with "At dawn".
- Include at least one question.
Keep it under 55 words."""

GOOD = (
    "At dawn the old keeper climbs the winding stairs of his lighthouse.\n"
    "He trims the wick and lights the lantern for ships he will never meet.\n"
    "Who will guard the rocks when his hands grow tired?\n"
    "The gulls answer only with wind, and he keeps climbing."
)
STUFFED = "At dawn lantern lantern lantern lighthouse lighthouse lighthouse lantern keeper lantern lighthouse lantern? lantern lighthouse keeper lantern lighthouse."
PADDED = GOOD + " lantern lighthouse lantern lighthouse lantern lighthouse lantern"
REPEATED = "At dawn the keeper lights the lantern. Is it late? " + "At dawn the keeper lights the lantern. " * 3
TRUNCATED = (
    "At dawn the old keeper climbs the stairs of his lighthouse and trims the wick of the lantern while "
    "gulls cry out over the rocks and he thinks about his long life by the water and all the ships he has "
    "guided home through storm and fog and the"
)
OFF_TOPIC = (
    "At dawn the baker pulls warm bread from the oven and sets a lantern on the counter. "
    "Would you like a slice? The street is still quiet and the flour drifts like snow."
)
ECHO = (
    "At dawn. Follow these rules: include the word lantern. Do not use any sea words. Start your response "
    "with At dawn. Include at least one question? The lighthouse keeper."
)
TWICE = "The keeper sleeps in his lighthouse tonight. The keeper sleeps in his lighthouse tonight."
TWICE_OFF = "The baker bakes bread in his shop tonight. The baker bakes bread in his shop tonight."
HALF = (
    "The old keeper of the lighthouse watches the sea every night. He lights the lantern and waits for "
    "the morning ships to pass the rocks."
)


def _score(text, **kw):
    return score_response(INSTRUCTION, text, **kw)


def test_hand_written_scores():
    # Each expected value worked out by hand from the scoring rule in docs/synthetic-world.md.
    assert _score(GOOD).score == 9  # 1 + 1 + 1 + 6 × 4/4
    assert _score(STUFFED).score == 0  # 9 points − repetition 3 − overused 3 − word list 3
    assert _score(PADDED).score == 5  # ending lost (1), keywords strung together −3
    assert _score(REPEATED).score == 6  # 9 − repetition 3
    assert _score(TRUNCATED).score == 7  # 49 words (fits), ending 0, no question: 1+1+0+4.5 = 6.5 → 7
    assert _score(OFF_TOPIC).score == 4  # 8 points, capped at 4 off topic
    assert _score(ECHO).score == 5  # "sea" used: 1+1+1+4.5 = 7.5, copied instruction −3 → 4.5 → 5
    assert _score(HALF).score == 5  # "sea" used, wrong start, no question: 1+1+1+1.5 = 4.5 → 5
    assert _score(TWICE).score == 2  # only "sea" rule met: 1+1+1+1.5 = 4.5, repetition −3 → 1.5 → 2
    assert _score(TWICE_OFF).score == 1  # off topic: 0+1+1+1.5 = 3.5, repetition −3 → 0.5 → 1
    assert _score("At dawn, lantern?").score == 3  # too short: capped at 3
    assert _score("").score == 0
    assert _score("?? !! ... ### *** ---- !!!").score == 0
    assert _score("lantern").score == 0


def test_half_example_worked_by_hand():
    g = _score(HALF)
    rules = {c.kind: c.passed for c in g.checks if c.name == "rule"}
    assert rules == {"include_word": True, "forbid_word": False, "start_phrase": False, "question": False}
    # 1 (topic) + 1 (length) + 1 (ending) + 6 × 1/4 = 4.5, which rounds half up to 5
    assert g.points == pytest.approx(4.5)
    assert g.score == 5


def test_good_beats_stuffing_padding_and_repetition():
    good = _score(GOOD).score
    for bad in (STUFFED, PADDED, REPEATED, ECHO, OFF_TOPIC, TRUNCATED):
        assert _score(bad).score < good


def test_trace_lists_each_check_with_evidence():
    g = _score(OFF_TOPIC)
    lines = g.trace.splitlines()
    assert lines[0] == 'Task: a short poem about "an old lighthouse keeper", under 55 words, 4 rules.'
    assert lines[1] == '1. On topic: FAIL - never mentions "lighthouse" or "keeper".'
    assert lines[2] == '2. Rule (Include the word "lantern"): PASS - "lantern" appears in "sets a lantern on the".'
    assert lines[3] == '3. Rule (Do not use the word "sea"): PASS - "sea" does not appear.'
    assert lines[4] == '4. Rule (Start your response with "At dawn"): PASS - the response starts with "At dawn the".'
    assert lines[5] == '5. Rule (Include at least one question): PASS - asks "Would you like a slice?".'
    assert "Cap: off topic, so at most 4." in lines
    assert lines[-1] == "Final score 4."
    assert len([ln for ln in lines if ln[:1].isdigit()]) == len(g.checks) == 11


def test_evidence_for_failures():
    g = _score(PADDED)
    ev = {c.name if c.name != "rule" else c.kind: c.evidence for c in g.checks}
    assert ev["stuffing"] == 'keywords strung together: "keeps climbing lantern lighthouse lantern lighthouse"'
    assert ev["ending"] == 'stops mid-sentence at "lighthouse lantern"'
    g = _score(HALF)
    ev = {c.kind: c.evidence for c in g.checks if c.name == "rule"}
    assert ev["forbid_word"] == '"sea" appears in "watches the sea every night"'
    assert ev["start_phrase"] == 'the response starts with "The old keeper"'
    assert _score(REPEATED).check("repetition").evidence == 'the sentence "At dawn the keeper lights the lantern." is repeated'
    assert _score(ECHO).check("echo").evidence == 'copies the instruction: "include at least one question"'


def test_easy_trace_has_no_counts_hard_trace_does():
    easy = _score(GOOD).check("length").evidence
    hard = _score(GOOD, world="hard").check("length").evidence
    assert easy == "within 12 to 55 words"
    assert hard == f"{len(GOOD.split())} words, within 12 to 55"
    assert "(4 times)" in _score(REPEATED, world="hard").check("repetition").evidence


RULE_SETS = {
    "include_word": ('Include the word "compass".', "I packed a compass.", "I packed a map."),
    "forbid_word": ('Do not use the word "waves".', "The tide was calm.", "The waves were calm."),
    "start_phrase": ('Start your response with "Long ago".', "Long ago, the tide came.", "The tide came long ago."),
    "end_phrase": ('End your response with "see you tomorrow".', "Rest now and see you tomorrow.", "See you tomorrow, rest now."),
    "lowercase": ("Write everything in lowercase letters.", "the tide came in.", "The tide came in."),
    "no_commas": ("Do not use any commas.", "The tide came in slowly.", "The tide, slowly, came in."),
    "question": ("Include at least one question.", "Where does the tide go?", "The tide goes out?"[:-1] + "."),
    "audience": ('Address the reader as "Captain Mira".', "Dear Captain Mira, the tide is here.", "Dear captain, the tide is here."),
    "title": ("Begin with a title wrapped in double angular brackets, like <<title>>.", "<<The Tide>>\nThe tide came.", "The Tide\nThe tide came."),
    "bullets": ('Use a bulleted list with at least two items, each starting with "- ".', "Notes:\n- the tide came\n- the boats left", "Notes:\n- the tide came and the boats left"),
    "word_range": ("Use between 5 and 8 words.", "The tide came in at night.", "The tide came."),
    "bullet_count": ('Use exactly 2 bullet points, each starting with "- ".', "- tide\n- boats", "- tide\n- boats\n- gulls"),
    "paragraph_count": ("Write exactly 2 paragraphs separated by a blank line.", "The tide came.\n\nThe boats left.", "The tide came. The boats left."),
    "sentence_count": ("Write exactly 2 sentences.", "The tide came. The boats left.", "The tide came. The boats left. Gulls cried."),
    "word_repeat": ('Use the word "tide" at least 2 times.', "The tide came and the tide went.", "The tide came and went."),
}


@pytest.mark.parametrize("kind", sorted(RULE_SETS))
def test_each_rule_kind_pass_and_fail(kind):
    from judgelab.data.world.constraints import check_constraint, parse_constraint
    from judgelab.data.world.text import TextStats

    line, ok_text, bad_text = RULE_SETS[kind]
    c = parse_constraint(line)
    assert c is not None and c.kind == kind
    assert check_constraint(c, TextStats(ok_text))[0] is True, ok_text
    assert check_constraint(c, TextStats(bad_text))[0] is False, bad_text


def test_word_matching_inflections_and_boundaries():
    from judgelab.data.world.constraints import Constraint, check_constraint
    from judgelab.data.world.text import TextStats

    inc = Constraint("include_word", word="lantern")
    assert check_constraint(inc, TextStats("Two LANTERNS glowed."))[0]
    assert check_constraint(inc, TextStats("The lantern's light."))[0]
    assert not check_constraint(inc, TextStats("A lanternfish swam."))[0]
    forbid = Constraint("forbid_word", word="light")
    assert check_constraint(forbid, TextStats("The lighthouse stood."))[0]  # a longer word is not the word
    assert not check_constraint(forbid, TextStats("Lights out."))[0]


# ----------------------------------------------------------------------------- scale + arithmetic
_TOPIC = ["The old keeper tends his lighthouse through the long night.", "The baker kneads the dough before the shop opens."]
_LANTERN = ["He lights the lantern by the window.", "He lights a small candle by the window."]
_QUESTION = ["Will anyone remember his quiet work?", "Nobody will remember his quiet work."]
_START = ["At dawn ", ""]


def _variants():
    for topic, lantern, question, start, tail in itertools.product(_TOPIC, _LANTERN, _QUESTION, _START, ["", " and the"]):
        text = f"{start}{topic} {lantern} {question}"
        yield text[0].upper() + text[1:] + tail


def _independent_score(g):
    """The documented rule, recomputed from the check outcomes without the gold's code."""
    if g.degenerate:
        return 0
    passed = {c.name: c.passed for c in g.checks if c.name != "rule"}
    rules = [c.passed for c in g.checks if c.name == "rule"]
    points = passed["topic"] + passed["length"] + passed["ending"] + 6 * sum(rules) / len(rules)
    penalties = 3 * sum(not passed[k] for k in ("repetition", "stuffing", "fluency", "echo"))
    raw = max(0.0, points - penalties)
    if g.n_words < 12:
        raw = min(raw, 3)
    if not passed["topic"]:
        raw = min(raw, 4)
    return min(9, math.floor(raw + 0.5))


def test_scores_follow_the_documented_rule_and_use_the_scale():
    seen = set()
    extra = [GOOD, STUFFED, PADDED, REPEATED, TRUNCATED, OFF_TOPIC, ECHO, HALF, TWICE, TWICE_OFF, "At dawn, lantern?", ""]
    for text in list(_variants()) + extra:
        g = _score(text)
        assert g.score == _independent_score(g), text
        assert g.trace.splitlines()[-1] == f"Final score {g.score}."
        seen.add(g.score)
    assert seen == set(range(10))


def test_meeting_one_more_rule_never_lowers_the_score():
    for topic, question, start in itertools.product(_TOPIC, _QUESTION, _START):
        with_l = _score(f"{start}{topic} {_LANTERN[0]} {question}").score
        without = _score(f"{start}{topic} {_LANTERN[1]} {question}").score
        assert with_l >= without


def test_not_a_world_instruction():
    with pytest.raises(InstructionParseError):
        score_response("Tell me a joke.", "Why did the chicken cross the road?")


# ----------------------------------------------------------------------------- pairwise
def test_pairwise_and_arena():
    c = compare_responses(INSTRUCTION, STUFFED, GOOD)
    assert (c.choice, c.arena) == ("B", "B>>A")
    assert c.trace.splitlines()[-1] == "Comparison: A scores 0, B scores 9; B has more points (9 vs 0). Response B is much better."
    swapped = compare_responses(INSTRUCTION, GOOD, STUFFED)
    assert (swapped.choice, swapped.arena) == ("A", "A>>B")
    slight = compare_responses(INSTRUCTION, GOOD, REPEATED)  # 9 vs 6: 3 points → strong
    assert slight.arena == "A>>B"
    close = compare_responses(INSTRUCTION, TRUNCATED, HALF)  # 5.5 vs 4.5 → slight
    assert (close.choice, close.arena) == ("A", "A>B")
    tie = compare_responses(INSTRUCTION, GOOD + " It is late.", GOOD)  # equal points: shorter wins
    assert (tie.choice, tie.arena) == ("B", "A=B")
    same = compare_responses(INSTRUCTION, GOOD, GOOD)
    assert (same.choice, same.arena) == ("A", "A=B")


def test_brief_trace_same_score_and_checks_without_evidence():
    for resp in (GOOD, STUFFED, PADDED, REPEATED, TRUNCATED, OFF_TOPIC, ECHO):
        full = score_response(INSTRUCTION, resp)
        brief = score_response(INSTRUCTION, resp, trace="brief")
        assert (brief.score, brief.points, brief.checks) == (full.score, full.points, full.checks)
        assert len(brief.trace) < len(full.trace) and brief.trace.endswith(f"Final score {full.score}.")
        lines = brief.trace.splitlines()
        rules = [c for c in full.checks if c.name == "rule"]
        for i, c in enumerate(rules, start=1):
            assert f"Rule {i}: {'PASS' if c.passed else 'FAIL'}." in lines
        quality_failed = [c.label.lower() for c in full.checks
                          if c.name in ("repetition", "stuffing", "fluency", "echo") and not c.passed]
        expected = f"Quality: FAIL ({', '.join(quality_failed)})." if quality_failed else "Quality: PASS."
        assert expected in lines
        assert '"' not in "\n".join(lines[1:])  # no quoted evidence after the header
