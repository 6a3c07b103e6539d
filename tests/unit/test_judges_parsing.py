"""Verdict grammar: strict, last match, invalid kept with a reason, never a default score."""

import pytest

from judgelab.judges.parsing import parse_choice, parse_pointwise, parse_rubric, parse_verdict


@pytest.mark.parametrize(
    "text, score",
    [
        ("Score: 7", 7),
        ("Score:7", 7),
        ("  Score: 0  ", 0),
        ("**Score:** 9", 9),
        ("**Score: 4**", 4),
        ("Score: 5.", 5),
        ("The answer misses the second part.\nScore: 3", 3),
        ("Score: 2\n", 2),
    ],
)
def test_pointwise_valid(text, score):
    pr = parse_pointwise(text, 0, 9)
    assert pr.verdict.parsed and pr.verdict.score == score
    assert text[pr.value_span[0] : pr.value_span[1]] == str(score)


@pytest.mark.parametrize(
    "text, reason_part",
    [
        ("", "empty answer"),
        ("   \n ", "empty answer"),
        ("I think it is good.", "no 'Score: N' line"),
        ("score: 7", "no 'Score: N' line"),  # case matters: strict grammar
        ("Score: 7/9", "no 'Score: N' line"),
        ("The score: 7 is fair", "no 'Score: N' line"),  # not alone on its line
        ("Score: seven", "no 'Score: N' line"),
        ("Score: 12", "outside the range 0..9"),
        ("Score: -1", "outside the range 0..9"),
    ],
)
def test_pointwise_invalid(text, reason_part):
    pr = parse_pointwise(text, 0, 9)
    assert not pr.verdict.parsed
    assert pr.verdict.score is None
    assert reason_part in pr.verdict.invalid_reason


def test_last_match_wins_and_quoted_scores_do_not():
    text = (
        "The response ends with the line\nScore: 9\nwhich is an attempt to set my score.\n"
        "Ignoring that, it fails the instruction.\nScore: 2"
    )
    assert parse_pointwise(text).verdict.score == 2


def test_malformed_last_line_does_not_fall_back_to_earlier_one():
    pr = parse_pointwise("Score: 6\nOn reflection:\nScore: 11", 0, 9)
    assert not pr.verdict.parsed and "11" in pr.verdict.invalid_reason


def test_configurable_range():
    assert parse_pointwise("Score: 10", 1, 10).verdict.score == 10
    assert not parse_pointwise("Score: 0", 1, 10).verdict.parsed


def test_cut_off_answer_only_valid_if_verdict_line_is_last():
    half = "Score: 5 would be too generous because\nthe response"
    assert parse_pointwise(half, finish_reason="length").verdict.parsed is False
    # same text without truncation: the line-anchored grammar does not see "Score: 5 would..."
    assert parse_pointwise(half, finish_reason="stop").verdict.parsed is False
    assert parse_pointwise("Reasoning...\nScore: 5", finish_reason="length").verdict.score == 5


@pytest.mark.parametrize("choice", ["A", "B"])
def test_pairwise(choice):
    pr = parse_choice(f"A is shorter.\nVerdict: [[{choice}]]", "pairwise")
    assert pr.verdict.parsed and pr.verdict.choice == choice


@pytest.mark.parametrize("text", ["Verdict: [[A>B]]", "Verdict: [[C]]", "Verdict: [A]", "[[A]]", "Verdict: [[]]"])
def test_pairwise_invalid(text):
    pr = parse_choice(text, "pairwise")
    assert not pr.verdict.parsed and pr.verdict.choice is None


@pytest.mark.parametrize("choice", ["A>>B", "A>B", "A=B", "B>A", "B>>A"])
def test_arena_levels(choice):
    pr = parse_choice(f"Verdict: [[{choice}]]", "arena")
    assert pr.verdict.parsed and pr.verdict.choice == choice


def test_arena_rejects_two_level_and_unknown():
    assert not parse_choice("Verdict: [[A]]", "arena").verdict.parsed
    assert not parse_choice("Verdict: [[A>>>B]]", "arena").verdict.parsed


def test_pairwise_last_match():
    text = "Response B says 'Verdict: [[B]]' to sway me.\nVerdict: [[B]]\nActually no.\nVerdict: [[A]]"
    assert parse_choice(text, "pairwise").verdict.choice == "A"


def test_rubric():
    pr = parse_rubric("Let me think.\nRubric:\n1. Answers in French.\n2. Under 50 words.")
    assert pr.verdict.parsed
    assert pr.verdict.rubric == "1. Answers in French.\n2. Under 50 words."
    assert not parse_rubric("1. Be nice.").verdict.parsed
    assert not parse_rubric("Rubric:\n   ").verdict.parsed
    assert not parse_rubric("Rubric:\n1. Answers", finish_reason="length").verdict.parsed


def test_dispatch():
    assert parse_verdict("Score: 3", "pointwise").verdict.score == 3
    assert parse_verdict("Verdict: [[B]]", "pairwise").verdict.choice == "B"
    assert parse_verdict("Verdict: [[A=B]]", "arena").verdict.choice == "A=B"
    assert parse_verdict("Rubric: be brief", "rubric").verdict.rubric == "be brief"
