"""Judge training targets: verdict-only, trace + verdict in the model's thinking format, effort filter."""

from __future__ import annotations

import pytest

from judgelab.backends.reasoning import split_reasoning
from judgelab.errors import DataError
from judgelab.training.targets import (
    GoldAtEffort,
    detect_thinking_format,
    distill_target,
    select_effort_consistent,
    verdict_target,
)

QWEN3_LIKE = "{%- if enable_thinking is defined %}<think>\n\n</think>{% endif %}{{ message.content }}"
SMOLLM2 = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}{% endfor %}"


def test_detect_format():
    assert detect_thinking_format(QWEN3_LIKE) == "think_tags"
    assert detect_thinking_format(SMOLLM2) == "plain"
    assert detect_thinking_format(None) == "plain"


def test_distill_think_tags_round_trip_through_split_reasoning():
    target = distill_target("1. Title: PASS.\nFinal score 7.", "Score: 7", "think_tags")
    assert target == "<think>\n1. Title: PASS.\nFinal score 7.\n</think>\n\nScore: 7"
    answer, reasoning = split_reasoning(target)
    assert reasoning is not None and "Title: PASS" in reasoning
    assert answer.strip() == "Score: 7"


def test_distill_plain_ends_with_verdict():
    assert distill_target("  checks  ", "Score: 3", "plain") == "checks\nScore: 3"


def test_bad_targets():
    with pytest.raises(DataError):
        distill_target("", "Score: 3", "plain")
    with pytest.raises(DataError):
        distill_target("<think>x</think>", "Score: 3", "plain")
    with pytest.raises(DataError):
        verdict_target("Score: 3\nScore: 4")
    assert verdict_target(" Verdict: [[A]] ") == "Verdict: [[A]]"


def test_select_effort_consistent():
    gold = {
        "a": {"low": GoldAtEffort(3, "t-low-a"), "high": GoldAtEffort(3, "t-high-a")},
        "b": {"low": GoldAtEffort(5, "t-low-b"), "high": GoldAtEffort(6, "t-high-b")},
        "c": {"low": GoldAtEffort("A", "t-low-c"), "high": GoldAtEffort("A", "t-high-c")},
    }
    kept = select_effort_consistent(gold, "low")
    assert sorted(kept) == ["a", "c"]
    assert kept["a"].trace == "t-low-a"
    assert select_effort_consistent(gold, "high") == {k: v["high"] for k, v in gold.items()}
    with pytest.raises(DataError):
        select_effort_consistent({"x": {"low": GoldAtEffort(1, "t")}}, "low")
