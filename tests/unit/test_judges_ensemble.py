"""Ensembles: aggregates checked against numpy, invalid members handled explicitly."""

import asyncio

import numpy as np
import pytest

from judgelab.errors import ConfigError
from judgelab.judges.ensemble import EnsembleJudge, EnsembleSpec, aggregate_values
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.types import PointwiseItem
from judgelab.types import Completion

OPENAI = {"kind": "openai", "model": "fake", "base_urls": ["http://127.0.0.1:1/v1"]}


class Fixed:
    """A backend answering with a fixed text per call (a list cycles over the items)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.i = 0

    @property
    def identity(self):
        return {"kind": "fake", "answers": self.answers}

    async def complete_many(self, requests, sampling, progress=None):
        out = []
        for _ in requests:
            out.append(Completion(text=self.answers[self.i % len(self.answers)], finish_reason="stop"))
            self.i += 1
        return out

    async def aclose(self):
        pass


def judge(answers, template="pointwise-v1"):
    return Judge(JudgeSpec(backend=OPENAI, template=template), backend=Fixed(answers))


@pytest.mark.parametrize("values", [[3.0, 7.0, 8.0], [5.0], [0.0, 9.0]])
def test_aggregates_match_numpy(values):
    v = np.array(values)
    assert aggregate_values(values, "mean") == pytest.approx(v.mean())
    assert aggregate_values(values, "min") == pytest.approx(v.min())
    assert aggregate_values(values, "mean_minus_std", 0.5) == pytest.approx(v.mean() - 0.5 * v.std(ddof=0))


def test_hand_computed_mean_minus_std():
    # values 2, 4: mean 3, population std 1 → 3 - 2*1 = 1
    assert aggregate_values([2.0, 4.0], "mean_minus_std", 2.0) == pytest.approx(1.0)


def test_ensemble_scores_items():
    ens = EnsembleJudge([judge(["Score: 2", "Score: 8"]), judge(["Score: 4", "Score: 8"])], "mean_minus_std", lam=1.0)
    a, b = asyncio.run(ens.score_pointwise([PointwiseItem("q", "r1"), PointwiseItem("q", "r2")]))
    assert a.score == pytest.approx(3.0 - 1.0) and a.parsed and a.n_valid == 2
    assert b.score == pytest.approx(8.0)
    assert [m.verdict.score for m in a.members] == [2, 4]


def test_invalid_member_makes_ensemble_invalid_by_default():
    ens = EnsembleJudge([judge(["Score: 2"]), judge(["dunno"])], "mean")
    [e] = asyncio.run(ens.score_pointwise([PointwiseItem("q", "r")]))
    assert not e.parsed and e.score is None and e.reward is None
    assert e.member_reasons == {1: "no 'Score: N' line in the answer"}


def test_min_valid_allows_partial_panel():
    ens = EnsembleJudge([judge(["Score: 2"]), judge(["dunno"]), judge(["Score: 6"])], "min", min_valid=2)
    [e] = asyncio.run(ens.score_pointwise([PointwiseItem("q", "r")]))
    assert e.parsed and e.score == 2.0 and e.n_valid == 2 and 1 in e.member_reasons


def test_ensemble_rejects_non_pointwise_members_and_bad_min_valid():
    with pytest.raises(ConfigError):
        EnsembleJudge([judge(["Verdict: [[A]]"], template="pairwise-v1")])
    with pytest.raises(ConfigError):
        EnsembleJudge([judge(["Score: 1"])], min_valid=2)
    with pytest.raises(ValueError):
        EnsembleSpec(members=[JudgeSpec(backend=OPENAI)], min_valid=3)
