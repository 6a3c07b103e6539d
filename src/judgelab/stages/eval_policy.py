"""``eval_policy`` stage (L4): re-score a train-policy run's checkpoints with any judges.

    judgelab eval-policy experiments/cpu/eval_policy.yaml --run-dir runs/policy-eval

For each selected step (0 = the initial policy, N = ``checkpoints/checkpoint-N`` of the training
run) the policy is loaded, the held-out prompts are sampled exactly as the training run's tracking
did (same prompts, sampling and seeds, ``judgelab.training.heldout``), the KL to the initial
policy is estimated, and the samples are scored by the proxy, the gold and the extra judges
(``judgelab.evaluation.policy_eval``). Every field left empty (``null``) is taken from the
training run's resolved config, so an empty config re-scores with the training run's own judges;
set ``gold:`` / ``proxy:`` / ``extra_judges:`` to score the same checkpoints with other judges.

Outputs (``RUN_DIR/``): ``tracking.jsonl`` and ``eval_samples.jsonl`` with the train-policy
schemas (``judgelab.tracking/v1``, ``judgelab.eval_sample/v1``). One step at a time is appended
durably; a rerun skips the steps already in ``tracking.jsonl``; a completed run returns at once.
A pairwise proxy compares each sample with the step-0 sample, so step 0 is always evaluated first
when a pairwise proxy is used.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from judgelab.config.stage import StageConfig
from judgelab.errors import ConfigError, DataError, RunDirError
from judgelab.judges.cache import JudgementCache
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.templates import get_template
from judgelab.rewards.policy_reward import (
    JudgeLoop,
    PairwiseRewardSpec,
    PolicyRewardSpec,
    build_reward_judge,
    close_judges,
)
from judgelab.store.jsonl import JsonlAppender, iter_jsonl, write_jsonl_atomic
from judgelab.store.rundir import RunDir
from judgelab.training.heldout import HeldOutSampling

logger = logging.getLogger(__name__)

STAGE = "eval_policy"
TRACKING_FILE = "tracking.jsonl"
SAMPLES_FILE = "eval_samples.jsonl"
CACHE_FILE = "judge_cache.sqlite"


class EvalPolicyConfig(StageConfig):
    """Which run, which checkpoints, which judges; ``null`` = as in the training run."""

    stage: Literal["eval_policy"] = "eval_policy"
    train_run: str = Field(..., min_length=1, description="a train-policy run directory")
    steps: list[int] | Literal["all"] = Field(
        "all", description="checkpoint steps to score (0 = the initial policy); all = 0 and every checkpoint"
    )
    eval_prompts: str | None = Field(None, description="held-out prompts (JSONL records); null = the run's")
    eval_limit: int | None = Field(None, ge=1, description="first N held-out prompts; null = the run's tracking.limit")
    sampling: HeldOutSampling | None = Field(None, description="null = the run's tracking.sampling")
    proxy: PolicyRewardSpec | None = Field(None, description="null = the run's reward judge")
    gold: JudgeSpec | None = Field(None, description="null = the run's gold")
    extra_judges: list[JudgeSpec] | None = Field(None, description="null = the run's tracking.extra_judges")
    kl: bool = Field(True, description="estimate KL to the initial policy")
    cache: bool = True
    cache_path: str | None = Field(
        None, description=f"None = RUN_DIR/{CACHE_FILE}; point at the training run's cache to reuse its judgements"
    )


@dataclass(frozen=True)
class EvalPolicyResult:
    run_dir: Path
    tracking: Path
    steps: list[int]
    computed: list[int]
    seconds: float
    skipped: bool = False


def _train_config(train_run: Path) -> Any:
    from judgelab.stages.train_policy import STAGE as TRAIN_STAGE
    from judgelab.stages.train_policy import TrainPolicyConfig

    run = RunDir.load(train_run)
    if run.manifest.get("stage") != TRAIN_STAGE:
        raise RunDirError(f"{train_run} is a {run.manifest.get('stage')!r} run, not train_policy",
                          "point train_run at a train-policy run directory")
    return TrainPolicyConfig.model_validate(run.config_dict())


def _select_steps(cfg: EvalPolicyConfig, available: dict[int, Path]) -> list[int]:
    if cfg.steps == "all":
        return [0, *sorted(available)]
    missing = [s for s in cfg.steps if s != 0 and s not in available]
    if missing:
        raise ConfigError(
            f"no checkpoint for step(s) {missing} in the training run",
            f"available: 0 (initial) and {sorted(available) or 'none'}",
        )
    return sorted(set(cfg.steps))


def run_eval_policy(cfg: EvalPolicyConfig, run_dir: str | Path, *, show_progress: bool | None = None) -> EvalPolicyResult:
    """Re-score the selected checkpoints into ``run_dir`` (resumable; see the module docstring).

    ``show_progress``: a bar over the checkpoints (None = on a terminal only)."""
    from judgelab.evaluation.policy_eval import (
        PolicyScorer,
        PromptInfo,
        evaluate_policy_checkpoint,
        step0_baseline,
    )
    from judgelab.stages.train_policy import (
        CHECKPOINT_DIR,
        checkpoint_dirs,
        load_prompt_records,
        prompt_messages,
    )
    from judgelab.training.heldout import HeldOutPrompt, ReferencePolicy

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if (run_dir / "manifest.json").exists():
        prev = RunDir.load(run_dir)
        if prev.completed_run_of(STAGE, cfg):
            logger.info("eval-policy in %s is already complete; nothing to do", run_dir)
            steps = sorted(int(r["step"]) for r in iter_jsonl(run_dir / TRACKING_FILE))
            return EvalPolicyResult(run_dir, run_dir / TRACKING_FILE, steps, [], 0.0, skipped=True)
    train_run = Path(cfg.train_run)
    tcfg = _train_config(train_run)
    available = dict(checkpoint_dirs(train_run / CHECKPOINT_DIR))
    steps = _select_steps(cfg, available)
    reward_spec = cfg.proxy or tcfg.reward
    gold_spec = cfg.gold or tcfg.gold
    extra_specs = cfg.extra_judges if cfg.extra_judges is not None else tcfg.tracking.extra_judges
    if get_template(gold_spec.template, gold_spec.mode).protocol != "pointwise":
        raise ConfigError("the gold judge must use a pointwise template", "set gold.template: pointwise-v1")
    for j in extra_specs:
        if not j.name or j.name in ("proxy", "gold"):
            raise ConfigError(f"extra judge name {j.name!r}: every extra judge needs a unique name, "
                              "not 'proxy' or 'gold'")
    pairwise = isinstance(reward_spec, PairwiseRewardSpec)
    if pairwise and 0 not in steps:
        steps = [0, *steps]
    sampling = cfg.sampling or tcfg.tracking.sampling
    if sampling.max_new_tokens is None:
        sampling = sampling.model_copy(update={"max_new_tokens": tcfg.train.max_completion_length})
    held_out = load_prompt_records(cfg.eval_prompts or tcfg.eval_prompts,
                                   cfg.eval_limit if cfg.eval_limit is not None else tcfg.tracking.limit)
    prompts = [HeldOutPrompt(r.id, tuple(prompt_messages(tcfg.system_prompt, r.prompt))) for r in held_out]

    run = RunDir.open(run_dir, cfg, stage=STAGE, seed=cfg.seed)
    computed: list[int] = []
    with run.guard():
        done = {int(r["step"]) for r in iter_jsonl(run.file(TRACKING_FILE))} if run.file(TRACKING_FILE).exists() else set()
        samples_path = run.file(SAMPLES_FILE)
        baseline = None
        if samples_path.exists():
            rows = [r for r in iter_jsonl(samples_path) if int(r["step"]) in done]
            write_jsonl_atomic(samples_path, rows)  # drop rows of a step whose record never landed
            baseline = step0_baseline(rows)
        loop = JudgeLoop()
        cache = JudgementCache(cfg.cache_path or run.file(CACHE_FILE)) if cfg.cache else None
        proxy = build_reward_judge(reward_spec, cache=cache)
        gold = Judge(gold_spec, cache=cache)
        extra = {str(j.name): Judge(j, cache=cache) for j in extra_specs}
        reference = None
        from tqdm.auto import tqdm

        bar = tqdm(total=len(steps), initial=sum(s in done for s in steps), desc="eval-policy", unit="checkpoint",
                   disable=None if show_progress is None else not show_progress, dynamic_ncols=True)
        try:
            scorer = PolicyScorer(
                prompts={r.id: PromptInfo(r.id, r.prompt, _rubric(r.meta.get(tcfg.rubric_key))) for r in held_out},
                proxy=proxy, proxy_kind="pairwise" if pairwise else "pointwise", gold=gold, extra=extra, loop=loop,
            )
            reference = ReferencePolicy(tcfg.policy.name, revision=tcfg.policy.revision,
                                        trust_remote_code=tcfg.policy.trust_remote_code) if cfg.kl else None
            with JsonlAppender(run.file(TRACKING_FILE)) as tracking_out, JsonlAppender(samples_path) as samples_out:
                for step in steps:
                    if step in done:
                        continue
                    path = tcfg.policy.name if step == 0 else str(available[step])
                    point = evaluate_policy_checkpoint(
                        path, step, prompts=prompts, sampling=sampling, scorer=scorer,
                        initial_model=tcfg.policy.name, reference=reference,
                        chat_template_kwargs=dict(tcfg.train.chat_template_kwargs),
                        revision=tcfg.policy.revision, trust_remote_code=tcfg.policy.trust_remote_code,
                        baseline=baseline,
                    )
                    if step == 0:
                        baseline = step0_baseline(point.samples)
                    samples_out.append(point.samples)
                    tracking_out.append([point.record()])
                    computed.append(step)
                    logger.info("eval-policy step %d (%s): proxy %s, gold %s", step, path,
                                point.metrics["reward/proxy"], point.metrics["reward/gold"])
                    bar.update(1)
                    bar.set_postfix(step=step, proxy=_short(point.metrics["reward/proxy"]),
                                    gold=_short(point.metrics["reward/gold"]), refresh=True)
        finally:
            bar.close()
            if reference is not None:
                reference.release()
            close_judges(loop, [proxy, gold, *extra.values()], cache)
        all_steps = sorted(int(r["step"]) for r in iter_jsonl(run.file(TRACKING_FILE)))
        if not set(steps) <= set(all_steps):
            raise DataError(f"steps {sorted(set(steps) - set(all_steps))} were not recorded")
        run.record_output(TRACKING_FILE, records=len(all_steps), schema="judgelab.tracking/v1")
        run.record_output(SAMPLES_FILE, schema="judgelab.eval_sample/v1")
        run.set_status("completed", stats={"eval_policy/computed": len(computed),
                                           "eval_policy/seconds": time.perf_counter() - t0})
    return EvalPolicyResult(run.path, run.file(TRACKING_FILE), all_steps, computed, time.perf_counter() - t0)


def _short(x: Any) -> str:
    return "-" if x is None else f"{x:.3g}"


def _rubric(v: Any) -> str | None:
    return v if isinstance(v, str) else None


__all__ = ["EvalPolicyConfig", "EvalPolicyResult", "run_eval_policy"]
