"""Per-check agreement of a reasoning judge's checklist trace with the gold's."""

import pytest

from judgelab.evaluation.trace_checks import compute_check_agreement, parse_checks

BRIEF = """Task: a short speech about "a surprise birthday party", under 55 words, 3 rules.
On topic: PASS.
Rule 1: PASS.
Rule 2: FAIL.
Length: FAIL.
Quality: FAIL (repetition).
Points: on topic 1 + length 0 + ending 1 + rules 6 (3 of 3 met) = 8.
Final score 5."""

FULL = """1. On topic: FAIL - never mentions "lighthouse" or "keeper".
2. Rule (Include the word "lantern"): PASS - "lantern" appears in "sets a lantern on the".
6. Length: PASS - within 12 to 55 words."""


def test_parse_brief_and_full_traces():
    assert parse_checks(BRIEF) == {"On topic": True, "Rule 1": True, "Rule 2": False, "Length": False,
                                   "Quality": False}
    assert parse_checks(FULL) == {"On topic": False, 'Rule (Include the word "lantern")': True, "Length": True}
    assert parse_checks(None) == {} and parse_checks("Score: 4") == {}


def test_agreement_over_gold_lines_missing_counts_against():
    judge = "On topic: PASS.\nRule 1: FAIL.\nRule 2: FAIL.\nQuality: FAIL."  # Length missing
    res = compute_check_agreement([(judge, BRIEF), ("anything", None)])
    # gold lines 5: on topic ✓, rule 1 ✗, rule 2 ✓, length missing, quality ✓ → 3/5
    assert res.agreement == pytest.approx(3 / 5) and res.n_lines == 5 and res.n_traces == 1 and res.missing == 1
    assert res.per_check["Rule 1"] == (0.0, 1) and res.per_check["On topic"] == (1.0, 1)
    assert compute_check_agreement([]).agreement is None
