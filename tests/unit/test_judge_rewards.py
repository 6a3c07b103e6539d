"""Judge-GRPO rewards: (M - (s_hat - s)^2) / M pointwise, 1 / 0 / -1 pairwise, both-orders pairing."""

from __future__ import annotations

import re

import pytest

from judgelab.errors import DataError
from judgelab.rewards.judge_rewards import (
    make_pairwise_judge_reward,
    make_pointwise_judge_reward,
    pairwise_judge_reward,
    pointwise_judge_reward,
)
from judgelab.rewards.trl_format import completion_text


def parse_score(text: str, finish_reason: str | None = None) -> int | None:
    m = re.findall(r"Score: (\d+)", text)
    return int(m[-1]) if m else None


def parse_choice(text: str, finish_reason: str | None = None) -> str | None:
    m = re.findall(r"Winner: (A|B|tie)\b", text)
    return m[-1] if m else None


def msg(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


class TestPointwise:
    def test_hand_computed_values(self):
        # scale 0..9 -> M = 81
        assert pointwise_judge_reward(7, 7, low=0, high=9) == 1.0
        assert pointwise_judge_reward(9, 0, low=0, high=9) == 0.0
        assert pointwise_judge_reward(5, 7, low=0, high=9) == pytest.approx((81 - 4) / 81)
        assert pointwise_judge_reward(1, 5, low=1, high=5) == pytest.approx(0.0)  # M = 16

    def test_invalid_and_out_of_range(self):
        assert pointwise_judge_reward(None, 3, low=0, high=9) == -1.0
        assert pointwise_judge_reward(10, 3, low=0, high=9) == -1.0
        assert pointwise_judge_reward(float("nan"), 3, low=0, high=9, invalid_reward=-2) == -2
        with pytest.raises(DataError):
            pointwise_judge_reward(3, 12, low=0, high=9)

    def test_trl_reward_function_reads_column_and_logs(self):
        logged: dict[str, float] = {}
        f = make_pointwise_judge_reward(parse_score)
        out = f(
            prompts=[[{"role": "user", "content": "p"}]] * 4,
            completions=[msg("Score: 4"), msg("no verdict"), "reasoning... Score: 9", msg("Score: 0")],
            gold_score=[4, 4, 0, 9],
            log_metric=lambda k, v: logged.__setitem__(k, v),
            trainer_state=None,
        )
        assert out == pytest.approx([1.0, -1.0, 0.0, 0.0])
        assert logged["judge_reward/invalid_rate"] == pytest.approx(0.25)

    def test_missing_gold_column_names_the_columns(self):
        f = make_pointwise_judge_reward(parse_score)
        with pytest.raises(DataError, match="gold_score") as e:
            f(prompts=["p"], completions=["Score: 1"], gold=[1])
        assert "gold" in (e.value.hint or "")


class TestPairwise:
    def test_values(self):
        assert pairwise_judge_reward("A", "A") == 1.0
        assert pairwise_judge_reward("B", "A") == 0.0
        assert pairwise_judge_reward(None, "A") == -1.0
        assert pairwise_judge_reward("C", "A") == -1.0

    def test_single_order(self):
        f = make_pairwise_judge_reward(parse_choice)
        out = f(prompts=["p1", "p1", "p2"], completions=["Winner: A", "Winner: B", "hmm"],
                gold_choice=["A", "A", "B"])
        assert out == [1.0, 0.0, -1.0]

    def test_both_orders_pairs_same_index_rollouts(self):
        f = make_pairwise_judge_reward(parse_choice, require_both_orders=True)
        # battle 1 shown as (x, y) -> gold A, and as (y, x) -> gold B; 3 rollouts per order.
        prompts = ["xy", "xy", "xy", "yx", "yx", "yx"]
        completions = ["Winner: A", "Winner: A", "???", "Winner: B", "Winner: A", "Winner: B"]
        gold = ["A", "A", "A", "B", "B", "B"]
        out = f(prompts=prompts, completions=completions, gold_choice=gold, pair_id=[1] * 6)
        # rollout 0: right/right -> 1,1 ; rollout 1: right/wrong -> 0,0 ; rollout 2: invalid/right -> -1,0
        assert out == [1.0, 0.0, -1.0, 1.0, 0.0, 0.0]

    def test_both_orders_unpaired_falls_back_and_is_logged(self):
        logged: dict[str, float] = {}
        f = make_pairwise_judge_reward(parse_choice, require_both_orders=True)
        out = f(prompts=["xy", "xy"], completions=["Winner: A", "Winner: B"], gold_choice=["A", "A"],
                pair_id=[7, 7], log_metric=lambda k, v: logged.__setitem__(k, v))
        assert out == [1.0, 0.0]
        assert logged["judge_reward/unpaired_rate"] == 1.0

    def test_both_orders_rejects_three_prompts_per_pair(self):
        f = make_pairwise_judge_reward(parse_choice, require_both_orders=True)
        with pytest.raises(DataError):
            f(prompts=["a", "b", "c"], completions=["Winner: A"] * 3, gold_choice=["A"] * 3, pair_id=[1] * 3)


def test_completion_text_formats():
    assert completion_text("x") == "x"
    assert completion_text(msg("y")) == "y"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "z"}]}]) == "z"
    with pytest.raises(DataError):
        completion_text(3)


# ---------------------------------------------------------------------------- issue 11: truncation
def test_truncated_judge_trace_earns_no_reward_in_training():
    """A trace cut off after a mid-text 'Score: 7' is invalid when the judge is used; so in training."""
    from judgelab.training.judge_data import make_verdict_parser

    cut = "The response covers the topic. Tentatively\nScore: 7\nBut on reflection the word limit"
    done = "The response covers the topic.\nScore: 7"
    prompts = [[{"role": "user", "content": "judge this"}]] * 2
    f = make_pointwise_judge_reward(make_verdict_parser("pointwise"))
    assert f(prompts, [msg(cut), msg(done)], gold_score=[7, 7]) == [1.0, 1.0]  # finish reason unknown
    f.bind_stop_token_ids([0])  # what train_grpo does: the trainer's eos + pad ids
    logged: dict[str, float] = {}
    out = f(prompts, [msg(cut), msg(done)], completion_ids=[[5, 6, 9], [5, 6, 0]],
            log_metric=logged.__setitem__, gold_score=[7, 7])
    assert out == [-1.0, 1.0]  # row 0 did not end with an end token: cut off mid-reasoning
    assert logged["judge_reward/truncated_rate"] == 0.5 and logged["judge_reward/invalid_rate"] == 0.5
    # a cut-off completion whose verdict line is its last line still counts (as in use)
    assert f(prompts[:1], [msg(done)], completion_ids=[[5, 9]], gold_score=[7]) == [1.0]


def test_truncated_pairwise_verdict_is_invalid_too():
    from judgelab.training.judge_data import make_verdict_parser

    f = make_pairwise_judge_reward(make_verdict_parser("pairwise"))
    f.bind_stop_token_ids([2])
    text = "Verdict: [[A]]\nwait, response B also"
    # cut off after the verdict line: invalid (-1); the same text finished with an end token: right (1)
    assert f([[{"role": "user", "content": "x"}]] * 2, [msg(text), msg(text)], gold_choice=["A", "A"],
             completion_ids=[[1, 1], [1, 2]]) == [-1.0, 1.0]
