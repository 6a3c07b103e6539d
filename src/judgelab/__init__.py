"""judgelab: LLM judges as rewards in RL post-training for non-verifiable domains.

The public Python API (the CLI's commands are these functions)::

    from judgelab import Judge, JudgeSpec, PointwiseItem          # judges
    from judgelab import load_config, StudyConfig, run_study       # the whole study
    from judgelab import run_train_judge, run_train_policy, ...    # one stage
    from judgelab import render_report, compute_hacking_summary    # analysis

``import judgelab`` stays light: the names above are loaded on first use (``__getattr__``), and
torch, transformers, trl and peft are imported only by the ``hf`` backend, ``training/`` and model
provisioning, when they are used (``tests/unit/test_import_light.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from judgelab.errors import (
    BackendError,
    ConfigError,
    DataError,
    InvalidOutputBudgetExceeded,
    JudgelabError,
    MissingDependencyError,
    RunDirError,
)
from judgelab.types import ChatMessage, Completion, TokenLogprob, Usage

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # judges
    "Judge": "judgelab.judges.judge",
    "JudgeSpec": "judgelab.judges.judge",
    "EnsembleJudge": "judgelab.judges.ensemble",
    "EnsembleSpec": "judgelab.judges.ensemble",
    "PointwiseItem": "judgelab.judges.types",
    "PairwiseItem": "judgelab.judges.types",
    "Judgement": "judgelab.judges.types",
    "Verdict": "judgelab.judges.types",
    "Battle": "judgelab.judges.types",
    "get_template": "judgelab.judges.templates",
    # configs
    "load_config": "judgelab.config.loader",
    # stages: config class + run function
    "StudyConfig": "judgelab.stages.study",
    "run_study": "judgelab.stages.study",
    "DataBuildConfig": "judgelab.stages.data_build",
    "run_data_build": "judgelab.stages.data_build",
    "SampleConfig": "judgelab.stages.sample",
    "run_sample": "judgelab.stages.sample",
    "AnnotateConfig": "judgelab.stages.annotate",
    "run_annotate": "judgelab.stages.annotate",
    "TrainJudgeConfig": "judgelab.stages.train_judge",
    "run_train_judge": "judgelab.stages.train_judge",
    "load_trained_judge_spec": "judgelab.stages.train_judge",
    "EvalJudgeConfig": "judgelab.stages.eval_judge",
    "run_eval_judge": "judgelab.stages.eval_judge",
    "TrainPolicyConfig": "judgelab.stages.train_policy",
    "run_train_policy": "judgelab.stages.train_policy",
    "EvalPolicyConfig": "judgelab.stages.eval_policy",
    "run_eval_policy": "judgelab.stages.eval_policy",
    # analysis
    "render_report": "judgelab.analysis.report",
    "compute_hacking_summary": "judgelab.analysis.hacking",
    "compute_paired_change": "judgelab.analysis.hacking",
    "compute_seed_comparison": "judgelab.analysis.hacking",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'judgelab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time these load lazily
    from judgelab.analysis.hacking import (
        compute_hacking_summary,
        compute_paired_change,
        compute_seed_comparison,
    )
    from judgelab.analysis.report import render_report
    from judgelab.config.loader import load_config
    from judgelab.judges.ensemble import EnsembleJudge, EnsembleSpec
    from judgelab.judges.judge import Judge, JudgeSpec
    from judgelab.judges.templates import get_template
    from judgelab.judges.types import Battle, Judgement, PairwiseItem, PointwiseItem, Verdict
    from judgelab.stages.annotate import AnnotateConfig, run_annotate
    from judgelab.stages.data_build import DataBuildConfig, run_data_build
    from judgelab.stages.eval_judge import EvalJudgeConfig, run_eval_judge
    from judgelab.stages.eval_policy import EvalPolicyConfig, run_eval_policy
    from judgelab.stages.sample import SampleConfig, run_sample
    from judgelab.stages.study import StudyConfig, run_study
    from judgelab.stages.train_judge import (
        TrainJudgeConfig,
        load_trained_judge_spec,
        run_train_judge,
    )
    from judgelab.stages.train_policy import TrainPolicyConfig, run_train_policy

__all__ = [
    "AnnotateConfig",
    "BackendError",
    "Battle",
    "ChatMessage",
    "Completion",
    "ConfigError",
    "DataBuildConfig",
    "DataError",
    "EnsembleJudge",
    "EnsembleSpec",
    "EvalJudgeConfig",
    "EvalPolicyConfig",
    "InvalidOutputBudgetExceeded",
    "Judge",
    "JudgeSpec",
    "JudgelabError",
    "Judgement",
    "MissingDependencyError",
    "PairwiseItem",
    "PointwiseItem",
    "RunDirError",
    "SampleConfig",
    "StudyConfig",
    "TokenLogprob",
    "TrainJudgeConfig",
    "TrainPolicyConfig",
    "Usage",
    "Verdict",
    "__version__",
    "compute_hacking_summary",
    "compute_paired_change",
    "compute_seed_comparison",
    "get_template",
    "load_config",
    "load_trained_judge_spec",
    "render_report",
    "run_annotate",
    "run_data_build",
    "run_eval_judge",
    "run_eval_policy",
    "run_sample",
    "run_study",
    "run_train_judge",
    "run_train_policy",
]
