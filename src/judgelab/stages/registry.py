"""Stage registry (L4): ``stage:`` name → config schema and run function, imported lazily.

``judgelab run FILE`` and ``judgelab validate FILE`` read the file's ``stage:`` key and dispatch
here. Entries are import strings so that listing stages imports nothing heavy.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from judgelab.errors import ConfigError


@dataclass(frozen=True)
class StageEntry:
    config: str  # "module:Class"
    run: str  # "module:function" taking (config, run_dir) -> result
    help: str

    def load_config_class(self) -> type[Any]:
        return _import(self.config)

    def load_run(self) -> Callable[..., Any]:
        return _import(self.run)


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


STAGES: dict[str, StageEntry] = {}


def register_stage(name: str, *, config: str, run: str, help: str) -> None:
    STAGES[name] = StageEntry(config=config, run=run, help=help)


def get_stage(name: Any) -> StageEntry:
    if not isinstance(name, str) or name not in STAGES:
        known = ", ".join(sorted(STAGES)) or "(none registered)"
        raise ConfigError(
            f"unknown or missing stage: {name!r}",
            f"the config's top-level 'stage:' must be one of: {known}",
        )
    return STAGES[name]


# --- shipped stages (each module registers nothing at import; entries live here, in one place) ---
# Stage owners add one register_stage(...) line each.
register_stage("annotate", config="judgelab.stages.annotate:AnnotateConfig",
               run="judgelab.stages.annotate:run_annotate", help="judge every record of a JSONL/Parquet file (resumable)")
register_stage("data_build", config="judgelab.stages.data_build:DataBuildConfig",
               run="judgelab.stages.data_build:run_data_build", help="build disjoint study splits and a data card")
register_stage("sample", config="judgelab.stages.sample:SampleConfig",
               run="judgelab.stages.sample:run_sample", help="sample N responses per prompt from a policy model (resumable)")
register_stage("train_policy", config="judgelab.stages.train_policy:TrainPolicyConfig",
               run="judgelab.stages.train_policy:run_train_policy",
               help="GRPO a policy against a proxy judge; track proxy, gold and KL on held-out prompts (resumable)")
register_stage("eval_policy", config="judgelab.stages.eval_policy:EvalPolicyConfig",
               run="judgelab.stages.eval_policy:run_eval_policy",
               help="re-score a train-policy run's checkpoints with any judges (resumable)")
register_stage("train_judge", config="judgelab.stages.train_judge:TrainJudgeConfig",
               run="judgelab.stages.train_judge:run_train_judge",
               help="train a proxy judge on gold labels: sft / distill / grpo, full or LoRA (resumable)")
register_stage("eval_judge", config="judgelab.stages.eval_judge:EvalJudgeConfig",
               run="judgelab.stages.eval_judge:run_eval_judge",
               help="score judges against held-out gold labels: alpha, accuracy, consistency, CIs")
register_stage("study", config="judgelab.stages.study:StudyConfig",
               run="judgelab.stages.study:run_study", help="the whole study: data, gold, judges, policies, report (resumable)")

__all__ = ["STAGES", "StageEntry", "get_stage", "register_stage"]
