"""``train_policy`` stage (L4): GRPO on a policy with a proxy judge as the reward, gold tracked.

    judgelab train-policy experiments/cpu/train_policy.yaml --run-dir runs/policy

Setup: the policy prompts (judgelab records; ``id`` + ``prompt`` used, ``meta[rubric_key]`` for
rubric-guided judges) become TRL conversational rows ``{"prompt", "prompt_id", "instruction",
"rubric"}``; the proxy judge (or ensemble) becomes an async TRL reward callable
(``judgelab.rewards.policy_reward``); the gold and any extra judges score the held-out prompts.
Loop: ``judgelab.training.grpo.train_grpo`` (TRL GRPOTrainer, never subclassed) with two
callbacks: held-out tracking every ``tracking.every_steps`` steps (samples + KL to the initial
policy, then proxy / gold / extra scores via ``judgelab.evaluation.policy_eval``) and a sink for
TRL's log rows. Save: checkpoints under ``checkpoints/`` (all kept by default, for
``eval-policy``), the final model in ``checkpoints/final``.

Outputs (``RUN_DIR/``; schemas in docs/records.md):

- ``tracking.jsonl`` (``judgelab.tracking/v1``): step 0 (the initial policy) and every tracked
  step: proxy, gold, KL, length and invalid rates, per-prompt values;
- ``eval_samples.jsonl`` (``judgelab.eval_sample/v1``): the held-out responses with their scores;
- ``train_log.jsonl``: TRL's log rows (loss, rewards/<name>/mean, judge/invalid_rate, ...);
- ``checkpoints/checkpoint-<step>/``, ``checkpoints/final/``; ``judge_cache.sqlite``;
- with ``train.report_to``: ``tensorboard/`` (event files) and/or ``wandb/`` (an offline W&B run):
  TRL's log rows plus the tracking metrics as ``tracking/<metric>`` (``judgelab.training.trackers``).

Resume: rerun the same command. Training continues from the newest checkpoint; tracking records
are appended durably and a step already in ``tracking.jsonl`` is never tracked again; TRL log
rows past the resumed checkpoint (from the lost stretch) are dropped before training continues,
and sample rows whose tracking record was never written are dropped too. A run marked completed
with the same config returns at once, without loading a model.

Seeds: the top-level ``seed`` seeds the trainer (``train.seed`` follows it unless set to the same
value); ``tracking.sampling.seed`` seeds the held-out sampling.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from judgelab.config.specs import StrictModel
from judgelab.config.stage import StageConfig
from judgelab.data.records import Record, iter_records
from judgelab.errors import DataError, RunDirError
from judgelab.judges.cache import JudgementCache
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.templates import get_template
from judgelab.rewards.policy_reward import (
    JudgeLoop,
    PairwiseRewardSpec,
    PolicyRewardSpec,
    build_reward_judge,
    close_judges,
    make_policy_reward,
)
from judgelab.store.jsonl import JsonlAppender, iter_jsonl, write_jsonl_atomic
from judgelab.store.ranks import is_main_process, wait_for_run_dir
from judgelab.store.rundir import RunDir
from judgelab.training.config import GRPOTrainSpec
from judgelab.training.heldout import HeldOutSampling

logger = logging.getLogger(__name__)

STAGE = "train_policy"
TRACKING_FILE = "tracking.jsonl"
SAMPLES_FILE = "eval_samples.jsonl"
TRAIN_LOG_FILE = "train_log.jsonl"
CHECKPOINT_DIR = "checkpoints"
CACHE_FILE = "judge_cache.sqlite"


# ------------------------------------------------------------------------------------ config
class PolicyModelSpec(StrictModel):
    """The policy to train: a prepared alias (``judgelab models list``), a local folder or a hub id."""

    name: str = Field(..., min_length=1)
    revision: str | None = None
    trust_remote_code: bool = False


class PolicyGRPOSpec(GRPOTrainSpec):
    """``GRPOTrainSpec`` with CPU-scale policy defaults (SmolLM2-135M, 2 idle cores: 23–31 s per step
    with an in-process non-reasoning SmolLM2 judge, 63–82 s with a reasoning one).

    Paper values (experiments/paper/train_policy.yaml): lr 1e-6, 8 rollouts, temperature 0.7,
    2048 completion tokens, β = 0 (no KL term), full fine-tuning in bf16.
    """

    learning_rate: float = Field(5e-5, gt=0, description="paper: 1e-6")
    num_generations: int = Field(4, ge=2, description="rollouts per prompt; paper: 8")
    per_device_train_batch_size: int = Field(8, ge=1, description="completions per step (2 prompts × 4)")
    max_completion_length: int = Field(48, ge=1, description="paper: 2048")
    temperature: float = Field(0.7, gt=0, description="rollout temperature; paper: 0.7")
    max_steps: int | None = Field(20, ge=1, description="optimizer steps")
    save_steps: int = Field(5, ge=1, description="checkpoint every N steps; must divide tracking.every_steps")
    save_total_limit: int | None = Field(None, ge=1, description="None = keep every checkpoint (eval-policy)")
    logging_steps: int = Field(1, ge=1)


class TrackingSpec(StrictModel):
    """Held-out gold tracking during training."""

    enabled: bool = Field(
        True, description="false: only checkpoints (e.g. DeepSpeed ZeRO-3); re-score them with eval-policy"
    )
    every_steps: int = Field(5, ge=1, description="track every N optimizer steps (and step 0 and the last)")
    limit: int | None = Field(16, ge=1, description="use the first N held-out prompts; None = all")
    proxy_limit: int | None = Field(
        None,
        ge=1,
        description="score the proxy on only the first N of those prompts (a reasoning proxy costs "
        "seconds per response on CPU); gold, KL and length use all; None = all",
    )
    sampling: HeldOutSampling = Field(default_factory=HeldOutSampling)
    kl: bool = Field(True, description="estimate KL to the initial policy on the held-out samples")
    extra_judges: list[JudgeSpec] = Field(
        default_factory=list, description="more pointwise judges to track; each needs a unique name"
    )


class TrainPolicyConfig(StageConfig):
    """GRPO a policy against a proxy judge; track proxy and gold on held-out prompts."""

    stage: Literal["train_policy"] = "train_policy"
    policy: PolicyModelSpec
    prompts: str = Field(..., min_length=1, description="JSONL of judgelab records: the policy's training prompts")
    prompt_limit: int | None = Field(None, ge=1, description="use only the first N training prompts")
    eval_prompts: str = Field(..., min_length=1, description="JSONL of judgelab records: held-out prompts")
    system_prompt: str | None = None
    rubric_key: str = Field("rubric", description="rubric-guided judges read meta[rubric_key]")
    reward: PolicyRewardSpec
    gold: JudgeSpec
    train: PolicyGRPOSpec = Field(default_factory=PolicyGRPOSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    cache: bool = Field(True, description="cache judgements (SQLite) by content")
    cache_path: str | None = Field(None, description=f"None = RUN_DIR/{CACHE_FILE}")

    @model_validator(mode="before")
    @classmethod
    def _seed_flows_to_train(cls, data: Any) -> Any:
        """One seed: top-level ``seed`` and ``train.seed`` must agree; either one sets both."""
        if not isinstance(data, dict) or not isinstance(data.get("train", {}), dict):
            return data
        train = dict(data.get("train") or {})
        if "seed" in data and "seed" in train and train["seed"] != data["seed"]:
            raise ValueError(
                f"seed={data['seed']} and train.seed={train['seed']} differ; set only seed "
                "(it seeds the trainer)"
            )
        if "seed" in data:
            train["seed"] = data["seed"]
        elif "seed" in train:
            data = {**data, "seed": train["seed"]}
        return {**data, "train": train}

    @model_validator(mode="after")
    def _consistent(self) -> TrainPolicyConfig:
        t = self.tracking
        if t.enabled and t.every_steps % self.train.save_steps:
            raise ValueError(
                f"tracking.every_steps={t.every_steps} is not a multiple of train.save_steps="
                f"{self.train.save_steps}: every tracked step needs a checkpoint for eval-policy; "
                f"e.g. train.save_steps: {t.every_steps}"
            )
        gold_protocol = get_template(self.gold.template, self.gold.mode).protocol
        if gold_protocol != "pointwise":
            raise ValueError(f"the gold judge must use a pointwise template for tracking, not {gold_protocol}")
        names = [j.name for j in t.extra_judges]
        if any(n is None for n in names):
            raise ValueError("every tracking.extra_judges entry needs a name (it becomes reward/<name>)")
        if len(set(names)) != len(names) or {"proxy", "gold"} & set(names):  # type: ignore[arg-type]
            raise ValueError(f"tracking.extra_judges names {names} must be unique and not 'proxy' or 'gold'")
        for j in t.extra_judges:
            if get_template(j.template, j.mode).protocol != "pointwise":
                raise ValueError(f"extra judge {j.name!r} must use a pointwise template")
        return self

    def heldout_sampling(self) -> HeldOutSampling:
        """The tracking sampling with ``max_new_tokens`` resolved (None = the rollout length)."""
        s = self.tracking.sampling
        if s.max_new_tokens is None:
            s = s.model_copy(update={"max_new_tokens": self.train.max_completion_length})
        return s


@dataclass(frozen=True)
class TrainPolicyResult:
    run_dir: Path
    model_path: Path
    checkpoints: list[Path]
    global_step: int
    tracking: Path
    tracked_steps: list[int]
    final_metrics: dict[str, Any]
    resumed_from: str | None = None
    train_seconds: float = 0.0
    skipped: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ inputs
def load_prompt_records(path: str | Path, limit: int | None = None) -> list[Record]:
    records = list(iter_records(path))
    if not records:
        raise DataError(f"{path}: no prompts", "the prompts file is empty")
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise DataError(f"{path}: duplicate prompt id {r.id!r}", "ids must be unique")
        seen.add(r.id)
    return records[:limit] if limit is not None else records


def prompt_messages(system_prompt: str | None, prompt: str) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*msgs, {"role": "user", "content": prompt}]


def grpo_prompt_rows(records: Sequence[Record], system_prompt: str | None, rubric_key: str) -> list[dict[str, Any]]:
    """TRL rows: conversational ``prompt`` plus the columns the reward reads."""
    return [
        {"prompt": prompt_messages(system_prompt, r.prompt), "prompt_id": r.id, "instruction": r.prompt,
         "rubric": r.meta.get(rubric_key) if isinstance(r.meta.get(rubric_key), str) else None}
        for r in records
    ]


def checkpoint_dirs(out_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``checkpoint-<step>`` folder under ``out_dir``, by step."""
    out = []
    if out_dir.is_dir():
        for p in out_dir.iterdir():
            name = p.name
            if p.is_dir() and name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit():
                out.append((int(name[len("checkpoint-"):]), p))
    return sorted(out)


# ------------------------------------------------------------------------------------ stage
def _completed(cfg: TrainPolicyConfig, run_dir: Path) -> TrainPolicyResult | None:
    if not (run_dir / "manifest.json").exists():
        return None
    prev = RunDir.load(run_dir)
    m = prev.manifest
    if not prev.completed_run_of(STAGE, cfg):
        return None
    logger.info("train-policy in %s is already complete; nothing to do", run_dir)
    try:
        rows = list(iter_jsonl(run_dir / TRACKING_FILE)) if (run_dir / TRACKING_FILE).exists() else []
        info = m.get("result", {})
        return TrainPolicyResult(
            run_dir=run_dir,
            model_path=Path(info["model_path"]),
            checkpoints=[p for _, p in checkpoint_dirs(run_dir / CHECKPOINT_DIR)],
            global_step=int(info["global_step"]),
            tracking=run_dir / TRACKING_FILE,
            tracked_steps=sorted(int(r["step"]) for r in rows),
            final_metrics=dict(rows[-1]["metrics"]) if rows else {},
            skipped=True,
            stats=dict(m.get("stats") or {}),
        )
    except (KeyError, ValueError, TypeError) as e:
        raise RunDirError(f"{run_dir} is marked complete but its outputs are unreadable: {e}",
                          "delete it and rerun") from e


def _prepare_resume(run: RunDir, out_dir: Path) -> tuple[str | None, set[int]]:
    """Drop log rows past the resumed checkpoint and orphaned sample rows; return done steps."""
    from judgelab.training.model_setup import find_resume_checkpoint

    resume_from = find_resume_checkpoint(out_dir, "auto")
    resume_step = int(Path(resume_from).name.rsplit("-", 1)[-1]) if resume_from else 0
    log_path = run.file(TRAIN_LOG_FILE)
    if log_path.exists():
        rows = list(iter_jsonl(log_path))
        keep = [r for r in rows if int(r.get("step", 0)) <= resume_step]
        if len(keep) != len(rows):
            logger.info("resume from step %d: dropping %d TRL log rows of the lost stretch",
                        resume_step, len(rows) - len(keep))
            write_jsonl_atomic(log_path, keep)
    done: set[int] = set()
    if run.file(TRACKING_FILE).exists():
        done = {int(r["step"]) for r in iter_jsonl(run.file(TRACKING_FILE))}
    samples_path = run.file(SAMPLES_FILE)
    if samples_path.exists():
        rows = list(iter_jsonl(samples_path))
        keep = [r for r in rows if int(r["step"]) in done]
        if len(keep) != len(rows):
            write_jsonl_atomic(samples_path, keep)
    return resume_from, done


class _TrackingWriter:
    """The ``track`` function handed to the callback: score a batch, append samples then record."""

    def __init__(self, scorer: Any, tracking_out: JsonlAppender, samples_out: JsonlAppender,
                 baseline: dict[str, str] | None, sink: Any = None, progress: Any = None) -> None:
        self.scorer = scorer
        self.tracking_out = tracking_out
        self.samples_out = samples_out
        self.baseline = baseline
        self.sink = sink  # judgelab.training.trackers.TrackerSink: tracking metrics into report_to
        self.progress = progress

    def __call__(self, batch: Any) -> None:
        from judgelab.evaluation.policy_eval import SampleToScore

        samples = [SampleToScore(s.prompt_id, s.text, s.n_tokens, s.finish_reason) for s in batch.samples]
        if batch.step == 0:
            self.baseline = {s.prompt_id: s.response for s in samples}
        point = self.scorer.score(
            batch.step, samples,
            kl_per_token=None if batch.kl is None else batch.kl.per_token,
            kl_per_sequence=None if batch.kl is None else batch.kl.per_sequence,
            baseline=self.baseline,
        )
        self.samples_out.append(point.samples)  # samples first: the tracking record commits the step
        self.tracking_out.append([point.record()])
        m = point.metrics
        logger.info("step %d: proxy %s, gold %s, KL %s, length %s", batch.step, _fmt(m["reward/proxy"]),
                    _fmt(m["reward/gold"]), _fmt(m["kl/policy_init"]), _fmt(m["length/mean"]))
        if self.sink is not None:
            self.sink.publish(batch.step, m)
        if self.progress is not None:
            self.progress.note(f"tracked step {batch.step}: proxy {_fmt(m['reward/proxy'])}, gold {_fmt(m['reward/gold'])}")


def run_train_policy(
    cfg: TrainPolicyConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Any] = (),
    show_progress: bool | None = None,
) -> TrainPolicyResult:
    """Train the policy into ``run_dir`` (resumable; see the module docstring).

    ``callbacks``: extra ``transformers.TrainerCallback``s (tests). ``show_progress``: the step bar
    (``judgelab.training.progress``; None = on a terminal only). ``train.report_to`` trackers write
    under ``run_dir`` (``tensorboard/``, ``wandb/``) and get the tracking metrics too. Under
    torchrun / accelerate every rank calls this; only rank 0 writes the run directory's records.
    """
    run_dir = Path(run_dir)
    done = _completed(cfg, run_dir)
    if done is not None:
        return done
    from judgelab.evaluation.policy_eval import PolicyScorer, PromptInfo, step0_baseline
    from judgelab.training.callbacks import (
        PolicyTracker,
        TrackingPlan,
        make_log_callback,
        make_tracking_callback,
    )
    from judgelab.training.grpo import train_grpo
    from judgelab.training.heldout import HeldOutPrompt, ReferencePolicy
    from judgelab.training.progress import make_progress_callback
    from judgelab.training.trackers import TrackerSink

    t0 = time.perf_counter()
    main = is_main_process()
    out_dir = run_dir / CHECKPOINT_DIR
    run: RunDir | None = None
    if main:
        run = RunDir.open(run_dir, cfg, stage=STAGE, seed=cfg.seed)
        run.manifest["policy"] = {"judge": reward_judge_name(cfg.reward), "seed": cfg.seed,
                                  "proxy_protocol": "pairwise" if cfg.reward.kind == "pairwise" else "pointwise"}
        run.save_manifest()
    else:
        wait_for_run_dir(run_dir)  # rank 0 creates the run directory; never race it
    with run.guard() if run is not None else contextlib.nullcontext(), contextlib.ExitStack() as stack:
        records = load_prompt_records(cfg.prompts, cfg.prompt_limit)
        held_out = load_prompt_records(cfg.eval_prompts, cfg.tracking.limit)
        resume_from, done_steps = _prepare_resume(run, out_dir) if run is not None else (None, set())
        for spec in [cfg.gold, *cfg.tracking.extra_judges, *_reward_judge_specs(cfg.reward)]:
            template = get_template(spec.template, spec.mode)
            if run is not None:
                run.record_template(template.key, template.sha256)
        if cfg.reward.kind != "pairwise" and _readouts(cfg.reward) == {"text"}:
            logger.warning("the proxy reward reads parsed scores (readout: text), not the expected score")

        loop = JudgeLoop()
        cache = JudgementCache(cfg.cache_path or run_dir / CACHE_FILE) if cfg.cache else None
        proxy = build_reward_judge(cfg.reward, cache=cache)
        gold = Judge(cfg.gold, cache=cache)
        extra = {str(j.name): Judge(j, cache=cache) for j in cfg.tracking.extra_judges}
        reward = make_policy_reward(cfg.reward, proxy, loop=loop)
        stack.callback(close_judges, loop, [proxy, gold, *extra.values()], cache)
        train_cbs: list[Any] = []
        progress = make_progress_callback("train-policy", enabled=show_progress)
        sink = TrackerSink(cfg.train.report_to, run_dir)
        stack.callback(sink.close)
        if run is not None:
            if cfg.tracking.enabled:
                scorer = PolicyScorer(
                    prompts={r.id: PromptInfo(r.id, r.prompt, _rubric(r, cfg.rubric_key)) for r in held_out},
                    proxy=proxy, proxy_kind="pairwise" if isinstance(cfg.reward, PairwiseRewardSpec) else "pointwise",
                    gold=gold, extra=extra, loop=loop, proxy_limit=cfg.tracking.proxy_limit,
                )
                writer = _TrackingWriter(
                    scorer,
                    stack.enter_context(JsonlAppender(run.file(TRACKING_FILE))),
                    stack.enter_context(JsonlAppender(run.file(SAMPLES_FILE))),
                    step0_baseline(iter_jsonl(run.file(SAMPLES_FILE))) if run.file(SAMPLES_FILE).exists() else None,
                    sink=sink, progress=progress,
                )
                plan = TrackingPlan(
                    prompts=[HeldOutPrompt(r.id, tuple(prompt_messages(cfg.system_prompt, r.prompt)))
                             for r in held_out],
                    sampling=cfg.heldout_sampling(),
                    every_steps=cfg.tracking.every_steps,
                    done_steps=set(done_steps),
                    kl=cfg.tracking.kl,
                    chat_template_kwargs=dict(cfg.train.chat_template_kwargs),
                )
                reference = ReferencePolicy(cfg.policy.name, revision=cfg.policy.revision,
                                            trust_remote_code=cfg.policy.trust_remote_code) if cfg.tracking.kl else None
                train_cbs.append(make_tracking_callback(PolicyTracker(plan, writer, reference)))
            train_cbs.append(make_log_callback(stack.enter_context(JsonlAppender(run.file(TRAIN_LOG_FILE))).append))
        train_cbs.append(progress)
        result = train_grpo(
            cfg.policy.name,
            grpo_prompt_rows(records, cfg.system_prompt, cfg.rubric_key),
            [reward],
            cfg.train,
            out_dir,
            revision=cfg.policy.revision,
            trust_remote_code=cfg.policy.trust_remote_code,
            resume="auto",
            callbacks=[*train_cbs, *callbacks],
            tracker_dir=run_dir,
        )
        stack.close()  # judges, cache and record files are closed before the run is marked complete
        tracking_path = run_dir / TRACKING_FILE
        rows = list(iter_jsonl(tracking_path)) if tracking_path.exists() else []
        final_metrics = dict(rows[-1]["metrics"]) if rows else {}
        stats = {
            "reward/invalid_rate": reward.invalid_rate,
            "reward/rollouts": reward.n_rollouts,
            "train/seconds": time.perf_counter() - t0,
            **{f"final/{k}": v for k, v in final_metrics.items()},
        }
        if run is not None:
            run.record_output(TRACKING_FILE, records=len(rows), schema="judgelab.tracking/v1")
            run.record_output(SAMPLES_FILE, schema="judgelab.eval_sample/v1")
            run.record_output(TRAIN_LOG_FILE, schema="trl.log_history")
            run.set_status("completed", stats=stats, result={
                "model_path": str(result.model_path), "global_step": result.global_step,
                "resumed_from": result.resumed_from or resume_from,
            })
    logger.info("train-policy: %d steps, final model in %s", result.global_step, result.model_path)
    return TrainPolicyResult(
        run_dir=run_dir,
        model_path=result.model_path,
        checkpoints=[p for _, p in checkpoint_dirs(out_dir)],
        global_step=result.global_step,
        tracking=run_dir / TRACKING_FILE,
        tracked_steps=sorted(int(r["step"]) for r in rows),
        final_metrics=final_metrics,
        resumed_from=result.resumed_from,
        train_seconds=result.train_seconds,
        stats=stats,
    )


def reward_judge_name(spec: Any) -> str:
    """The reward judge's name for records: the judge's ``name``, else the reward's ``name``."""
    if spec.kind != "ensemble" and spec.judge.name:
        return str(spec.judge.name)
    return str(spec.name)


def _reward_judge_specs(spec: Any) -> list[JudgeSpec]:
    return list(spec.ensemble.members) if spec.kind == "ensemble" else [spec.judge]


def _readouts(spec: Any) -> set[str]:
    return {j.readout for j in _reward_judge_specs(spec)}


def _rubric(r: Record, key: str) -> str | None:
    v = r.meta.get(key)
    return v if isinstance(v, str) else None


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


__all__ = [
    "CHECKPOINT_DIR",
    "SAMPLES_FILE",
    "TRACKING_FILE",
    "TRAIN_LOG_FILE",
    "PolicyGRPOSpec",
    "PolicyModelSpec",
    "TrackingSpec",
    "TrainPolicyConfig",
    "TrainPolicyResult",
    "checkpoint_dirs",
    "grpo_prompt_rows",
    "load_prompt_records",
    "prompt_messages",
    "reward_judge_name",
    "run_train_policy",
]
