"""Judges (L2): templates, parsing, expected-score read-out, ``Judge``, cache and ensembles.

``Judge`` = template + backend + parser (+ cache). See ``judge.py`` for the call flow,
``templates.py`` for the shipped prompts, ``parsing.py`` for the verdict grammar.
"""

from judgelab.judges.cache import JudgementCache, cache_key
from judgelab.judges.ensemble import EnsembleJudge, EnsembleJudgement, EnsembleSpec
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.templates import TEMPLATE_NAMES, JudgeTemplate, get_template
from judgelab.judges.types import Battle, Judgement, PairwiseItem, PointwiseItem, Verdict

__all__ = [
    "TEMPLATE_NAMES",
    "Battle",
    "EnsembleJudge",
    "EnsembleJudgement",
    "EnsembleSpec",
    "Judge",
    "JudgeSpec",
    "JudgeTemplate",
    "Judgement",
    "JudgementCache",
    "PairwiseItem",
    "PointwiseItem",
    "Verdict",
    "cache_key",
    "get_template",
]
