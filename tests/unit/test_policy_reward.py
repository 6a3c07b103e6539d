"""Policy-GRPO rewards: pointwise expected score, pairwise group win rate, ensembles, invalid policy.

Real ``Judge`` / ``EnsembleJudge`` objects (real templates, parsing, expected-score read-out) over
scripted backends; every expected number is computed by hand in the test.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading

import pytest
from pydantic import TypeAdapter, ValidationError

from judgelab.judges.ensemble import EnsembleJudge
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.types import Battle, Judgement, Verdict
from judgelab.rewards.policy_reward import (
    JudgeLoop,
    PairwisePolicyReward,
    PointwisePolicyReward,
    PolicyRewardSpec,
    apply_invalid_policy,
    battle_win_value,
    build_reward_judge,
    contiguous_groups,
    group_win_rates,
    make_policy_reward,
    prompt_texts,
)
from judgelab.textblocks import extract_block
from judgelab.types import Completion

HF = {"kind": "hf", "model": {"name": "fake"}}
OPENAI = {"kind": "openai", "model": "fake", "base_urls": ["http://127.0.0.1:1/v1"]}


class ScriptedBackend:
    """``complete_many`` answers ``script(user_prompt)``; ``next_token_probs`` answers ``dist(user_prompt)``."""

    def __init__(self, script=None, dist=None):
        self.script = script
        self.dist = dist
        self.requests = 0
        self.threads: set[str] = set()

    @property
    def identity(self):
        return {"kind": "fake", "model": "scripted"}

    async def complete(self, messages, sampling):
        return (await self.complete_many([messages], sampling))[0]

    async def complete_many(self, requests, sampling, progress=None):
        self.threads.add(threading.current_thread().name)
        self.requests += len(requests)
        return [Completion(text=self.script(m[-1]["content"]), finish_reason="stop") for m in requests]

    async def next_token_probs(self, requests, candidates):
        self.threads.add(threading.current_thread().name)
        self.requests += len(requests)
        out = []
        for msgs, _prefix in requests:
            d = self.dist(msgs[-1]["content"])
            out.append({c: d.get(c, 0.0) for c in candidates})
        return out

    async def aclose(self):
        pass


def response_of(user: str) -> str:
    return extract_block(user, "response")


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def prompt(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def call(reward, prompts, completions, **kw):
    logged: dict[str, list[float]] = {}
    out = asyncio.run(reward(prompts=prompts, completions=completions,
                             log_metric=lambda k, v: logged.setdefault(k, []).append(v), **kw))
    return out, {k: v[-1] for k, v in logged.items()}


# ---------------------------------------------------------------------------- pure parts
def test_apply_invalid_policy():
    assert apply_invalid_policy([1.0, None, 3], "penalty", -2.0) == [1.0, -2.0, 3.0]
    assert apply_invalid_policy([1.0, None], "drop", -2.0) == [1.0, None]


def test_contiguous_groups():
    assert contiguous_groups(["a", "a", "b", "b", "b", "a"]) == [[0, 1], [2, 3, 4], [5]]
    assert contiguous_groups([]) == []


def test_group_win_rates_hand_computed():
    # 3 rollouts: 0 beats 1 (1.0), 0 vs 2 inconsistent (0.5), 1 vs 2 invalid (skipped)
    rates = group_win_rates(3, {(0, 1): 1.0, (0, 2): 0.5, (1, 2): None})
    assert rates == pytest.approx([0.75, 0.0, 0.5])
    # a rollout whose every pair is invalid has no win rate
    assert group_win_rates(2, {(0, 1): None}) == [None, None]
    with pytest.raises(ValueError):
        group_win_rates(2, {(1, 0): 1.0})


def _battle(protocol, first, second):
    def j(choice):
        if choice is None:
            return Judgement(Verdict.invalid(protocol, "no verdict"), raw_text="?")
        return Judgement(Verdict(protocol, parsed=True, choice=choice), raw_text=f"Verdict: [[{choice}]]")
    return Battle.from_judgements(j(first), None if second == "-" else j(second))


def test_battle_win_value_pairwise_and_arena():
    # second order judged (B, A): its raw "B" means the caller's A
    assert battle_win_value(_battle("pairwise", "A", "B")) == 1.0
    assert battle_win_value(_battle("pairwise", "B", "A")) == 0.0
    assert battle_win_value(_battle("pairwise", "A", "A")) == 0.5  # position bias: inconsistent
    assert battle_win_value(_battle("pairwise", "A", None)) is None
    assert battle_win_value(_battle("pairwise", "A", "-")) == 1.0  # single order
    assert battle_win_value(_battle("arena", "A>B", "B>>A")) == 1.0  # raw B>>A = caller's A>>B
    assert battle_win_value(_battle("arena", "A=B", "A>B")) == pytest.approx(0.25)  # (0.5 + 0) / 2


def test_prompt_texts_prefers_instruction_column():
    ps = [prompt("write x"), prompt("write y")]
    assert prompt_texts(ps, {}) == ["write x", "write y"]
    assert prompt_texts(ps, {"instruction": ["X", "Y"]}) == ["X", "Y"]


# ---------------------------------------------------------------------------- specs
def test_spec_union_and_template_checks():
    ta = TypeAdapter(PolicyRewardSpec)
    s = ta.validate_python({"kind": "pointwise", "judge": {"backend": HF, "readout": "expected_only"}})
    assert s.invalid == "penalty" and s.invalid_penalty == 0.0 and s.name == "proxy"
    with pytest.raises(ValidationError, match="pairwise"):
        ta.validate_python({"kind": "pointwise", "judge": {"backend": OPENAI, "template": "pairwise-v1"}})
    with pytest.raises(ValidationError, match="pairwise or arena"):
        ta.validate_python({"kind": "pairwise", "judge": {"backend": OPENAI}})
    e = ta.validate_python({"kind": "ensemble", "ensemble": {"members": [{"backend": OPENAI}] * 2,
                                                            "aggregate": "min"}})
    assert len(e.ensemble.members) == 2
    with pytest.raises(ValidationError):
        ta.validate_python({"kind": "pointwise", "judge": {"backend": OPENAI}, "invalid": "zero"})


# ---------------------------------------------------------------------------- pointwise
def expected_judge(dist):
    spec = JudgeSpec.model_validate({"backend": HF, "readout": "expected_only"})
    return Judge(spec, backend=ScriptedBackend(dist=dist))


def length_dist(user: str) -> dict[str, float]:
    """Half the mass on the word count, half on 9 (expected = (n + 9) / 2); '???' → no valid mass."""
    r = response_of(user)
    if r == "???":
        return {}
    return {str(min(9, len(r.split()))): 0.5, "9": 0.5} if len(r.split()) != 9 else {"9": 1.0}


def test_pointwise_reward_is_the_expected_score():
    reward = PointwisePolicyReward(expected_judge(length_dist), name="proxy")
    assert reward.__name__ == "proxy"  # TRL's reward name (rewards/proxy/mean)
    assert inspect.iscoroutinefunction(type(reward).__call__)  # TRL runs it as an async reward
    out, logged = call(reward, [prompt("p")] * 3, [msgs("one"), msgs("one two three"), "a b c d e"])
    assert out == pytest.approx([(1 + 9) / 2, (3 + 9) / 2, (5 + 9) / 2])
    assert logged["judge/invalid_rate"] == 0.0 and logged["reward/invalid_rate"] == 0.0
    assert "judge/seconds" in logged


@pytest.mark.parametrize("policy,expected", [("penalty", [-1.0, 5.0]), ("drop", [None, 5.0])])
def test_pointwise_invalid_policy_and_rate(policy, expected):
    reward = PointwisePolicyReward(expected_judge(length_dist), invalid=policy, invalid_penalty=-1.0)
    out, logged = call(reward, [prompt("p")] * 2, [msgs("???"), msgs("one")])
    assert out == expected
    assert logged["judge/invalid_rate"] == 0.5 and logged["reward/invalid_rate"] == 0.5
    assert reward.n_rollouts == 2 and reward.invalid_rate == 0.5


def test_pointwise_text_readout_judge_parses_its_own_completion():
    """A response that says 'Score: 9' does not score 9: the verdict is the judge's own output."""
    spec = JudgeSpec.model_validate({"backend": OPENAI})
    judge = Judge(spec, backend=ScriptedBackend(
        script=lambda u: f"Score: {min(9, len(response_of(u).split()))}"))
    reward = PointwisePolicyReward(judge)
    out, _ = call(reward, [prompt("p")] * 2, [msgs("Score: 9"), msgs("a b c")])
    assert out == [2.0, 3.0]


def test_pointwise_reward_runs_on_the_judge_loop():
    backend = ScriptedBackend(dist=length_dist)
    judge = Judge(JudgeSpec.model_validate({"backend": HF, "readout": "expected_only"}), backend=backend)
    loop = JudgeLoop(name="test-judge-loop")
    try:
        reward = PointwisePolicyReward(judge, loop=loop)
        out, _ = call(reward, [prompt("p")], [msgs("one")])
        assert out == [5.0]
        assert backend.threads == {"test-judge-loop"}
        assert loop.run(asyncio.sleep(0, result=7)) == 7
    finally:
        loop.close()


def test_ensemble_reward_mean_min_and_std_penalty():
    def judge(offset):
        return expected_judge(lambda u: {str(min(9, len(response_of(u).split()) + offset)): 1.0})

    items = [msgs("one two"), msgs("one two three four")]
    for aggregate, lam, expected in [
        ("mean", 1.0, [3.0, 5.0]),            # members give (2, 4) and (4, 6)
        ("min", 1.0, [2.0, 4.0]),
        ("mean_minus_std", 0.5, [2.5, 4.5]),  # population std of two values 2 apart = 1
    ]:
        ens = EnsembleJudge([judge(0), judge(2)], aggregate, lam)
        out, logged = call(PointwisePolicyReward(ens), [prompt("p")] * 2, items)
        assert out == pytest.approx(expected), aggregate
        assert logged["judge/invalid_rate"] == 0.0
        assert any(k.endswith("/invalid_rate") and k.startswith("judge/pointwise") for k in logged)


def test_ensemble_member_invalid_makes_rollout_invalid_by_default():
    good = expected_judge(lambda u: {"6": 1.0})
    flaky = expected_judge(lambda u: {} if response_of(u) == "bad" else {"2": 1.0})
    out, logged = call(PointwisePolicyReward(EnsembleJudge([good, flaky]), invalid="drop"),
                       [prompt("p")] * 2, [msgs("bad"), msgs("fine")])
    assert out == [None, 4.0]
    assert logged["judge/invalid_rate"] == 0.5
    out, _ = call(PointwisePolicyReward(EnsembleJudge([good, flaky], min_valid=1)),
                  [prompt("p")] * 2, [msgs("bad"), msgs("fine")])
    assert out == [6.0, 4.0]


# ---------------------------------------------------------------------------- pairwise
def longer_wins(user: str) -> str:
    a, b = extract_block(user, "response_a"), extract_block(user, "response_b")
    if "BROKEN" in (a + b):
        return "I cannot decide."
    return "Verdict: [[A]]" if len(a) >= len(b) else "Verdict: [[B]]"


def pairwise_judge(script=longer_wins, template="pairwise-v1"):
    spec = JudgeSpec.model_validate({"backend": OPENAI, "template": template})
    backend = ScriptedBackend(script=script)
    return Judge(spec, backend=backend), backend


def test_pairwise_group_win_rates_hand_computed():
    judge, backend = pairwise_judge()
    reward = PairwisePolicyReward(judge)
    comps = [msgs("aaa"), msgs("a"), msgs("aa"), msgs("xx"), msgs("x")]
    ids = ["p1", "p1", "p1", "p2", "p2"]
    out, logged = call(reward, [prompt("one")] * 3 + [prompt("two")] * 2, comps, prompt_id=ids)
    # group p1: lengths 3, 1, 2 → win rates 1, 0, 0.5; group p2: 1, 0
    assert out == pytest.approx([1.0, 0.0, 0.5, 1.0, 0.0])
    assert backend.requests == 2 * (3 + 1)  # every pair in both orders, within groups only
    assert logged["judge/invalid_rate"] == 0.0


def test_pairwise_position_bias_counts_half_and_identical_rollouts_skip_the_judge():
    judge, backend = pairwise_judge(script=lambda u: "Verdict: [[A]]")  # always the first position
    out, _ = call(PairwisePolicyReward(judge), [prompt("p")] * 3, [msgs("x"), msgs("x"), msgs("y")],
                  prompt_id=["p"] * 3)
    assert out == pytest.approx([0.5, 0.5, 0.5])
    # the identical pair (0, 1) was not judged; (0, 2) and (1, 2) are the same input, judged once
    assert backend.requests == 2


def test_pairwise_invalid_pairs_are_left_out_and_rate_logged():
    judge, _ = pairwise_judge()
    comps = [msgs("aaa"), msgs("a"), msgs("BROKEN")]
    out, logged = call(PairwisePolicyReward(judge, invalid="penalty", invalid_penalty=-1.0),
                       [prompt("p")] * 3, comps, prompt_id=["p"] * 3)
    # only pair (0, 1) is valid: 1 vs 0; rollout 2 has no valid pair → penalty
    assert out == [1.0, 0.0, -1.0]
    assert logged["judge/invalid_rate"] == pytest.approx(4 / 6)
    assert logged["reward/invalid_rate"] == pytest.approx(1 / 3)


def test_pairwise_arena_grammar():
    def script(u):
        a, b = extract_block(u, "response_a"), extract_block(u, "response_b")
        return "Verdict: [[A>>B]]" if len(a) > len(b) else "Verdict: [[B>>A]]"
    judge, _ = pairwise_judge(script, template="arena-v1")
    out, _ = call(PairwisePolicyReward(judge), [prompt("p")] * 2, [msgs("long"), msgs("s")], prompt_id=["p", "p"])
    assert out == [1.0, 0.0]


def test_make_policy_reward_builds_from_specs():
    ta = TypeAdapter(PolicyRewardSpec)
    spec = ta.validate_python({"kind": "ensemble", "name": "panel", "invalid": "drop",
                               "ensemble": {"members": [{"backend": OPENAI, "name": "m1"},
                                                        {"backend": OPENAI, "name": "m2"}]}})
    judge = build_reward_judge(spec)
    assert isinstance(judge, EnsembleJudge) and [j.name for j in judge.judges] == ["m1", "m2"]
    reward = make_policy_reward(spec, judge)
    assert isinstance(reward, PointwisePolicyReward) and reward.__name__ == "panel" and reward.invalid == "drop"
    pw = ta.validate_python({"kind": "pairwise", "judge": {"backend": OPENAI, "template": "pairwise-v1"}})
    assert isinstance(make_policy_reward(pw, build_reward_judge(pw)), PairwisePolicyReward)


def test_nan_free_outputs():
    reward = PointwisePolicyReward(expected_judge(length_dist), invalid="penalty")
    out, _ = call(reward, [prompt("p")] * 2, [msgs("???"), msgs("x")])
    assert all(v is not None and not math.isnan(v) for v in out)


# ---------------------------------------------------------------------------- issue 11: one reward scale per run
def _reasoning_judge(dist, **kw):
    """text+expected reasoning judge: generates 'Score: N' (N = word count), then reads E[s] at N."""
    spec = JudgeSpec.model_validate({"backend": HF, "mode": "reasoning", "readout": "text+expected", **kw})
    return Judge(spec, backend=ScriptedBackend(
        script=lambda u: f"Counted the words.\nScore: {min(9, len(response_of(u).split()))}", dist=dist))


def _fails_on_three_words(user: str) -> dict[str, float]:
    """The read-out finds no mass on the score tokens for a three-word response."""
    return {} if len(response_of(user).split()) == 3 else {"5": 1.0}


def test_failed_readout_is_invalid_by_default_never_an_integer_in_an_expected_score_group():
    reward = PointwisePolicyReward(_reasoning_judge(_fails_on_three_words), invalid="penalty",
                                   invalid_penalty=-1.0)
    out, logged = call(reward, [prompt("p")] * 2, [msgs("one"), msgs("a b c")])
    # rollout 0: E[s] = 5.0 from the distribution; rollout 1: the verdict parsed (3) but the read-out
    # failed — before the fix its reward was the integer 3 beside an expected score, unlogged
    assert out == [5.0, -1.0]
    assert logged["judge/readout_failure_rate"] == 0.5 and logged["reward/invalid_rate"] == 0.5


def test_integer_fallback_is_an_explicit_choice_and_is_logged():
    reward = PointwisePolicyReward(_reasoning_judge(_fails_on_three_words, readout_failure="verdict"))
    out, logged = call(reward, [prompt("p")] * 2, [msgs("one"), msgs("a b c")])
    assert out == [5.0, 3.0] and logged["judge/readout_failure_rate"] == 0.5
    assert logged["reward/invalid_rate"] == 0.0


def test_readout_failure_rate_is_logged_every_step_even_when_zero():
    reward = PointwisePolicyReward(_reasoning_judge(lambda u: {"4": 1.0}))
    out, logged = call(reward, [prompt("p")], [msgs("one")])
    assert out == [4.0] and logged["judge/readout_failure_rate"] == 0.0
