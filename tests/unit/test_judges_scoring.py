"""Expected score: hand-computed values, renormalisation over valid tokens, token positions."""

import math

import pytest

from judgelab.judges.scoring import (
    distribution_from_probs,
    distribution_from_tokens,
    distribution_from_top_logprobs,
    readout_supported,
    token_index_at,
)
from judgelab.types import TokenLogprob


def test_expected_score_hand_computed():
    # P(2)=0.2, P(5)=0.3, P(9)=0.1, junk 0.4 → valid mass 0.6; E = (0.4 + 1.5 + 0.9)/0.6 = 4.6667
    d = distribution_from_probs({"2": 0.2, "5": 0.3, "9": 0.1, "\n": 0.4}, 0, 9)
    assert d.valid_mass == pytest.approx(0.6)
    assert d.expected == pytest.approx(2.8 / 0.6)
    assert d.argmax == 5
    assert sum(d.probs.values()) == pytest.approx(1.0)
    assert d.probs[5] == pytest.approx(0.5)


def test_out_of_range_candidates_are_not_valid():
    d = distribution_from_probs({"0": 0.5, "1": 0.25, "2": 0.25}, 1, 9)
    assert d.valid_mass == pytest.approx(0.5)
    assert d.expected == pytest.approx(1.5)


def test_no_valid_mass_is_none_not_a_score():
    assert distribution_from_probs({"x": 1.0}, 0, 9) is None
    assert distribution_from_probs({"3": 0.0}, 0, 9) is None


def test_argmax_tie_takes_lower_score():
    assert distribution_from_probs({"3": 0.5, "7": 0.5}, 0, 9).argmax == 3


def test_top_logprobs_aggregates_spacing_variants():
    top = {" 7": math.log(0.3), "7": math.log(0.2), "8": math.log(0.25), "The": math.log(0.2)}
    d = distribution_from_top_logprobs(top, 0, 9)
    assert d.valid_mass == pytest.approx(0.75)
    assert d.probs[7] == pytest.approx(0.5 / 0.75)
    assert d.expected == pytest.approx((7 * 0.5 + 8 * 0.25) / 0.75)


def test_chosen_token_added_if_missing_from_top():
    chosen = TokenLogprob("4", math.log(0.5), {"5": math.log(0.5)})
    d = distribution_from_top_logprobs(chosen.top_logprobs, 0, 9, chosen=chosen)
    assert d.expected == pytest.approx(4.5)


def _toks(*pieces):
    return tuple(TokenLogprob(p, math.log(0.9), {p: math.log(0.9)}) for p in pieces)


def test_token_index_of_score_digit_after_reasoning():
    tokens = _toks("Bad", " answer", ".\n", "Score", ":", " ", "3")
    answer = "Bad answer.\nScore: 3"
    assert token_index_at(tokens, answer, (19, 20)) == 6


def test_token_index_with_reasoning_tokens_in_front():
    # the server's tokens include a <think> block that split_reasoning removed from the answer
    tokens = _toks("<think>", "Score: 9 is", " tempting", "</think>", "Score", ": ", "2")
    answer = "Score: 2"
    assert token_index_at(tokens, answer, (7, 8)) == 6


def test_multi_token_score_is_reported():
    tokens = _toks("Score", ": ", "1", "0")
    assert token_index_at(tokens, "Score: 10", (7, 9)) == "the score spans several tokens"


def test_distribution_from_tokens_end_to_end():
    top = {"6": math.log(0.6), "5": math.log(0.3), "Six": math.log(0.1)}
    tokens = (TokenLogprob("Score", -0.01, {}), TokenLogprob(": ", -0.01, {}), TokenLogprob("6", math.log(0.6), top))
    d = distribution_from_tokens(tokens, "Score: 6", (7, 8), 0, 9)
    assert d.expected == pytest.approx((6 * 0.6 + 5 * 0.3) / 0.9)
    assert d.argmax == 6


def test_distribution_from_tokens_errors_are_reasons():
    tokens = (TokenLogprob("Score: ", -0.1, {}), TokenLogprob("6", -0.1, {}))
    assert "no top_logprobs" in distribution_from_tokens(tokens, "Score: 6", (7, 8), 0, 9)
    assert "do not spell out" in distribution_from_tokens(tokens, "Score: 7", (7, 8), 0, 9)


def test_readout_supported():
    assert readout_supported(0, 9) and readout_supported(1, 5)
    assert not readout_supported(1, 10)
