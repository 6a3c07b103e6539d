"""``train_judge`` stage (L4): train a proxy judge on gold labels — SFT, distillation or GRPO.

    judgelab train-judge experiments/judges/cpu_sft.yaml --run-dir runs/judges/sft

Recipes (``recipe.kind``, one code path at every scale; schemas in ``judgelab.training.config``):

- ``sft``: non-reasoning judge, target = the gold verdict only (``Score: N`` / ``Verdict: [[A]]``);
- ``distill``: reasoning judge, target = the gold's trace then the verdict, in the judge model's
  thinking format (``<think>…</think>`` for Qwen3-style chat templates, else plain text before the
  verdict line); loss on the completion only. ``trace_effort`` + ``effort_reference``: train on
  traces of a lower reasoning effort, keeping only items whose verdict matches the high-effort
  gold (``effort_reference`` = the high-effort annotations);
- ``grpo``: TRL GRPOTrainer with the judge rewards of ``judgelab.rewards.judge_rewards``
  ((M − (ŝ − s)²)/M pointwise, 1 / 0 / −1 pairwise, optional both-orders consistency). Start from
  the base model (``init: base``, the paper's RL-only judge) or from a distill run
  (``model.name: runs/judges/distill`` — a train-judge run dir stands for its ``final/`` model);
- ``rubric_guided``: the gold's per-instruction rubric (``meta[rubric_key]``) is in the judge's
  prompt (template ``pointwise-rubric-v1``), in training and in the written judge spec.

Setup: gold-labelled items (annotate ``judgements.jsonl`` or labelled records,
``judgelab.data.labelled``) → prompts rendered by the same ``judges/`` template + mode the judge
is used with (``judgelab.training.judge_data``); pairwise items in both orders. Examples too long
for ``train.max_length`` are dropped and counted (TRL would truncate the verdict away).
Loop: ``train_sft`` / ``train_grpo`` with checkpoints in ``RUN_DIR/checkpoint-*``.
Save: ``RUN_DIR/final/`` (plain HF folder) and ``RUN_DIR/judge.yaml``: the ``JudgeSpec`` that uses
the trained model with that template, mode, score range and read-out — what ``eval-judge``, the
study and policy training load (``load_trained_judge_spec``).

Other outputs: ``train_examples.jsonl`` (id, order, gold, target of every example trained on),
``train_log.jsonl`` (TRL log rows), ``manifest.json`` with the data counts.
Resume: rerun the same command; training continues from the newest checkpoint, and a completed
run returns at once without loading a model.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, model_validator

from judgelab.config.specs import DType, HFBackendSpec, ModelSpec, SamplingSpec, StrictModel
from judgelab.config.stage import StageConfig
from judgelab.data.labelled import LabelledItem, filter_by_reference, load_labelled_items
from judgelab.errors import ConfigError, DataError, RunDirError
from judgelab.judges.judge import JudgeSpec, Readout
from judgelab.judges.templates import JudgeTemplate, get_template
from judgelab.judges.types import Mode
from judgelab.store.jsonl import write_jsonl_atomic, write_text_atomic
from judgelab.store.ranks import is_main_process, wait_for_run_dir
from judgelab.store.rundir import RunDir
from judgelab.training.config import DistillRecipe, GRPORecipe, JudgeRecipe, SFTRecipe
from judgelab.training.model_setup import FINAL_DIRNAME
from judgelab.training.snapshots import (
    SnapshotMarks,
    trl_snapshot_callback,
    trunk_snapshot_callback,
)

logger = logging.getLogger(__name__)

STAGE = "train_judge"
JUDGE_SPEC_FILE = "judge.yaml"
EXAMPLES_FILE = "train_examples.jsonl"
TRAIN_LOG_FILE = "train_log.jsonl"
FINAL_DIR = FINAL_DIRNAME  # the trained model: RUN_DIR/final
EXAMPLE_SCHEMA = "judgelab.judge_train_example/v1"
_EFFORT_RANK = {"low": 0, "medium": 1, "high": 2}


# ------------------------------------------------------------------------------------ config
class JudgeModelRef(StrictModel):
    """The model to train: an alias, a local folder, a hub id, or a train-judge run dir."""

    name: str = Field(..., min_length=1)
    revision: str | None = None
    trust_remote_code: bool = False


class TrainedJudgeUse(StrictModel):
    """How the trained judge is used (written to ``judge.yaml``); None = chosen by mode/protocol."""

    name: str | None = Field(None, description="judge name in records; None = the run dir's name")
    readout: Readout | None = Field(
        None,
        description="None: pointwise non-reasoning → expected_only (one forward pass), pointwise "
        "reasoning → text+expected, pairwise → text",
    )
    sampling: SamplingSpec | None = Field(
        None,
        description="None: non-reasoning → greedy, 16 tokens; reasoning → T 0.7, top-p 0.95, "
        "top-k 20 (the paper's judge sampling), max_tokens 512",
    )
    batch_size: int = Field(8, ge=1)
    device: str = "auto"
    dtype: DType = "float32"


class TrainJudgeConfig(StageConfig):
    """Train a proxy judge on gold labels; see the module docstring."""

    stage: Literal["train_judge"] = "train_judge"
    model: JudgeModelRef
    data: str = Field(..., min_length=1, description="annotate judgements.jsonl or labelled records JSONL")
    limit: int | None = Field(None, ge=1, description="use only the first N labelled items")
    recipe: JudgeRecipe
    template: str | None = Field(
        None,
        description="judge template family; None = pointwise-v1 / pointwise-rubric-v1 / pairwise-v1 "
        "by the data's protocol and recipe.rubric_guided",
    )
    mode: Mode | None = Field(
        None, description="None: sft → non_reasoning, distill → reasoning, grpo → reasoning"
    )
    score_min: int = 0
    score_max: int = 9
    rubric_key: str = Field("rubric", description="rubric-guided judges read meta[rubric_key]")
    pairwise_orders: Literal["given", "both"] = Field(
        "both", description="pairwise: train on (A, B) only, or on both orders"
    )
    think_format: Literal["auto", "think_tags", "plain"] = Field(
        "auto", description="auto: think_tags when the model's chat template writes <think> blocks"
    )
    max_prompt_tokens: int | None = Field(
        None, ge=16, description="drop examples whose rendered prompt is longer (None = no limit)"
    )
    effort_reference: str | None = Field(
        None,
        description="high-effort gold annotations: keep only items whose verdict matches "
        "(distill with require_effort_agreement)",
    )
    judge: TrainedJudgeUse = Field(default_factory=TrainedJudgeUse)
    snapshot_minutes: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=list,
        description="also save the judge after these many training minutes (RUN_DIR/snapshots/<m>min, "
        "each with final/ and judge.yaml, usable as from_run:) — the alpha-vs-minutes curve of one run",
    )
    stop_at_last_snapshot: bool = Field(
        False, description="end training once the last snapshot is taken (final/ = that judge)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrainJudgeConfig:
        r = self.recipe
        if self.score_min >= self.score_max:
            raise ValueError(f"score_min ({self.score_min}) must be below score_max ({self.score_max})")
        if "seed" not in r.train.model_fields_set:
            r.train.seed = self.seed  # one seed: the top-level seed seeds the trainer
        elif r.train.seed != self.seed and "seed" in self.model_fields_set:
            raise ValueError(
                f"seed={self.seed} and recipe.train.seed={r.train.seed} differ; set one of them"
            )
        mode = self.judge_mode
        if isinstance(r, SFTRecipe) and mode != "non_reasoning":
            raise ValueError("recipe sft trains the verdict only: use mode non_reasoning, or recipe distill")
        if isinstance(r, DistillRecipe) and mode != "reasoning":
            raise ValueError("recipe distill trains a reasoning trace: use mode reasoning, or recipe sft")
        if self.template is not None:
            try:
                tpl = get_template(self.template, mode)
            except ConfigError as e:
                raise ValueError(f"{e.message}; {e.hint}") from None
            _check_template(tpl, r.rubric_guided)
            if (isinstance(r, (SFTRecipe, DistillRecipe)) and r.train.score_regression_weight > 0
                    and tpl.protocol != "pointwise"):
                raise ValueError(
                    f"recipe.train.score_regression_weight applies to pointwise judges; template "
                    f"{tpl.name} is {tpl.protocol}: set it to 0"
                )
        if (isinstance(r, DistillRecipe) and r.trace_effort not in (None, "high")
                and r.require_effort_agreement and self.effort_reference is None):
            raise ValueError(
                f"recipe.trace_effort={r.trace_effort} with require_effort_agreement needs "
                "effort_reference: the high-effort gold annotations of the same items"
            )
        if isinstance(r, GRPORecipe) and r.require_both_orders:
            if r.train.shuffle_dataset:
                raise ValueError(
                    "recipe.require_both_orders needs both orders in one generation batch: set "
                    "recipe.train.shuffle_dataset: false"
                )
            if self.pairwise_orders != "both":
                raise ValueError("recipe.require_both_orders needs pairwise_orders: both")
            spec = r.train
            prompts = spec.per_device_train_batch_size * (
                spec.steps_per_generation or spec.gradient_accumulation_steps
            ) // spec.num_generations
            if prompts % 2:
                raise ValueError(
                    f"recipe.require_both_orders: a generation batch holds {prompts} prompts; make it "
                    "even so both orders of a battle land in the same batch"
                )
        return self

    @property
    def judge_mode(self) -> Mode:
        if self.mode is not None:
            return self.mode
        return "non_reasoning" if isinstance(self.recipe, SFTRecipe) else "reasoning"


def _check_template(tpl: JudgeTemplate, rubric_guided: bool) -> None:
    has_rubric = "rubric" in tpl.blocks
    if rubric_guided and not has_rubric:
        raise ValueError(
            f"recipe.rubric_guided needs a rubric template; {tpl.name} has no rubric input: use "
            "template pointwise-rubric-v1"
        )
    if has_rubric and not rubric_guided:
        raise ValueError(f"template {tpl.name} takes a rubric: set recipe.rubric_guided: true")
    if tpl.protocol not in ("pointwise", "pairwise"):
        raise ValueError(f"template {tpl.name} is {tpl.protocol}; train pointwise or pairwise judges")


@dataclass
class TrainJudgeResult:
    run_dir: Path
    model_path: Path
    judge_spec_path: Path
    recipe: str
    mode: str
    template: str
    n_items: int
    n_examples: int
    skipped: dict[str, int] = field(default_factory=dict)
    global_step: int = 0
    train_seconds: float = 0.0
    already_completed: bool = False


# ------------------------------------------------------------------------------------ stage
def run_train_judge(config: TrainJudgeConfig, run_dir: str | Path, *,
                    show_progress: bool | None = None) -> TrainJudgeResult:
    """Train the judge of ``config`` into ``run_dir`` (resumable; see the module docstring).

    ``show_progress``: the step bar (None = on a terminal only). ``recipe.train.report_to`` trackers
    write under ``run_dir`` (``judgelab.training.trackers``). Under torchrun / accelerate every
    rank calls this; only rank 0 writes the run directory.
    """
    run_dir = Path(run_dir)
    main = is_main_process()
    done = _completed(config, run_dir)
    if done is not None:
        return done
    if main:
        run: RunDir | None = RunDir.open(run_dir, config, stage=STAGE, seed=config.recipe.train.seed)
    else:
        wait_for_run_dir(run_dir)  # rank 0 creates the run directory; never race it
        run = None
    with run.guard() if run is not None else contextlib.nullcontext():
        from judgelab.models.tokens import load_tokenizer, think_format
        from judgelab.training.judge_data import build_judge_examples, chat_template_kwargs_for

        mode = config.judge_mode
        items, skipped = _load_items(config)
        template = _resolve_template(config, items, mode)
        model_name = resolve_judge_model(config.model.name)
        tokenizer = load_tokenizer(model_name, config.model.revision, config.model.trust_remote_code)
        think = think_format(tokenizer) if config.think_format == "auto" else config.think_format
        template_kwargs = dict(chat_template_kwargs_for(think, mode))
        examples, build_skips = build_judge_examples(
            items, template,
            target="trace" if isinstance(config.recipe, DistillRecipe) else "verdict",
            think=think, orders=config.pairwise_orders,
            score_min=config.score_min, score_max=config.score_max, rubric_key=config.rubric_key,
        )
        skipped.update(build_skips)
        examples = _drop_long(config, examples, tokenizer, template_kwargs, skipped)
        if not examples:
            raise DataError(
                f"no training examples left from {config.data} (skipped: {dict(skipped)})",
                "check the data's labels/traces, rubric_key, or raise train.max_length / max_prompt_tokens",
            )
        if run is not None:
            _write_examples(run, examples)
            run.record_template(template.key, template.sha256)
        logger.info("train-judge %s: %d items → %d examples (skipped %s), %s, think format %s",
                    config.recipe.kind, len(items), len(examples), dict(skipped), template.key, think)
        from judgelab.training.progress import make_progress_callback

        snapshots = None
        if config.snapshot_minutes and run is not None:
            snapshots = SnapshotMarks(run_dir, config.snapshot_minutes,
                                      on_saved=_snapshot_spec_writer(config, template, mode, think),
                                      stop_after_last=config.stop_at_last_snapshot)
        train = _train(config, run_dir, examples, model_name, template, template_kwargs, snapshots,
                       show_progress, callbacks=[make_progress_callback("train-judge", enabled=show_progress)])
        result = TrainJudgeResult(
            run_dir=run_dir, model_path=Path(train.model_path), judge_spec_path=run_dir / JUDGE_SPEC_FILE,
            recipe=config.recipe.kind, mode=mode, template=template.name, n_items=len(items),
            n_examples=len(examples), skipped=dict(skipped), global_step=train.global_step,
            train_seconds=train.train_seconds,
        )
        if run is not None:
            write_jsonl_atomic(run.file(TRAIN_LOG_FILE), train.log_history)
            spec = trained_judge_spec(config, run.path, Path(train.model_path), template, mode, think)
            write_text_atomic(run.file(JUDGE_SPEC_FILE), _spec_yaml(spec, config))
            run.set_status("completed", train_judge={
                "recipe": result.recipe, "mode": mode, "template": template.name, "think_format": think,
                "items": result.n_items, "examples": result.n_examples, "skipped": result.skipped,
                "labels": _label_counts(examples), "global_step": result.global_step,
                "train_seconds": result.train_seconds, "model_path": str(result.model_path),
            })
        return result


def _completed(config: TrainJudgeConfig, run_dir: Path) -> TrainJudgeResult | None:
    """The result of a completed run of this config in ``run_dir``, else None."""
    if not (run_dir / "manifest.json").exists():
        return None
    prev = RunDir.load(run_dir)
    m = prev.manifest
    if not prev.completed_run_of(STAGE, config):
        return None
    if not (run_dir / JUDGE_SPEC_FILE).is_file():
        raise RunDirError(f"{run_dir} is marked complete but has no {JUDGE_SPEC_FILE}", "delete it and rerun")
    info = m.get("train_judge") or {}
    logger.info("train-judge: %s is already complete; nothing to do", run_dir)
    return TrainJudgeResult(
        run_dir=run_dir, model_path=Path(info.get("model_path", run_dir / FINAL_DIR)),
        judge_spec_path=run_dir / JUDGE_SPEC_FILE, recipe=config.recipe.kind,
        mode=str(info.get("mode", config.judge_mode)), template=str(info.get("template", config.template)),
        n_items=int(info.get("items", 0)), n_examples=int(info.get("examples", 0)),
        skipped=dict(info.get("skipped", {})), global_step=int(info.get("global_step", 0)),
        train_seconds=float(info.get("train_seconds", 0.0)), already_completed=True,
    )


# ------------------------------------------------------------------------------------ steps
def _load_items(config: TrainJudgeConfig) -> tuple[list[LabelledItem], Any]:
    loaded = load_labelled_items(config.data, limit=config.limit)
    items, skipped = loaded.items, loaded.skipped
    r = config.recipe
    if isinstance(r, DistillRecipe) and r.trace_effort is not None:
        wrong = sorted({it.effort for it in items if it.effort not in (None, r.trace_effort)})
        if wrong:
            raise DataError(
                f"{config.data} holds gold traces at reasoning effort {wrong}, the recipe asks for "
                f"trace_effort={r.trace_effort}",
                "point data: at the annotate run made with that reasoning_effort",
            )
        if r.require_effort_agreement and config.effort_reference is not None:
            ref = load_labelled_items(config.effort_reference)
            low = [it.effort for it in ref.items if it.effort is not None and
                   _EFFORT_RANK[it.effort] <= _EFFORT_RANK[r.trace_effort]]
            if low and r.trace_effort != "high":
                raise DataError(
                    f"effort_reference {config.effort_reference} is not a higher-effort gold "
                    f"(effort {low[0]})",
                    "point effort_reference at the high-effort annotate run",
                )
            items, dropped = filter_by_reference(items, ref.items)
            skipped.update({f"effort_{k}": v for k, v in dropped.items()})
    return items, skipped


def _resolve_template(config: TrainJudgeConfig, items: list[LabelledItem], mode: Mode) -> JudgeTemplate:
    if not items:
        raise DataError(f"{config.data}: no gold-labelled items", "check the file (invalid gold verdicts are skipped)")
    protocol = items[0].protocol
    name = config.template
    if name is None:
        if protocol == "pairwise":
            if config.recipe.rubric_guided:
                raise ConfigError("no pairwise rubric template is shipped", "train rubric-guided judges pointwise")
            name = "pairwise-v1"
        else:
            name = "pointwise-rubric-v1" if config.recipe.rubric_guided else "pointwise-v1"
    template = get_template(name, mode)
    if template.protocol != protocol:
        raise ConfigError(
            f"template {name} is {template.protocol} but {config.data} holds {protocol} labels",
            f"set template to a {protocol} template",
        )
    return template


def _drop_long(config: TrainJudgeConfig, examples: list[Any], tokenizer: Any,
               template_kwargs: dict[str, Any], skipped: Any) -> list[Any]:
    from judgelab.models.tokens import chat_lengths
    from judgelab.training.judge_data import filter_by_length

    if config.max_prompt_tokens is not None:
        lengths = chat_lengths(tokenizer, [ex.messages for ex in examples], [None] * len(examples), template_kwargs)
        examples, n = filter_by_length(examples, lengths, config.max_prompt_tokens)
        if n:
            skipped["prompt_too_long"] += n
    if not isinstance(config.recipe, GRPORecipe):
        lengths = chat_lengths(tokenizer, [ex.messages for ex in examples], [ex.target for ex in examples],
                               template_kwargs)
        examples, n = filter_by_length(examples, lengths, config.recipe.train.max_length)
        if n:
            skipped["longer_than_max_length"] += n
            logger.warning("train-judge: dropped %d examples longer than train.max_length=%d tokens",
                           n, config.recipe.train.max_length)
    return examples


def _write_examples(run: RunDir, examples: list[Any]) -> None:
    write_jsonl_atomic(run.file(EXAMPLES_FILE), (
        {"schema": EXAMPLE_SCHEMA, "id": ex.id, "order": ex.order, "gold": ex.gold, "target": ex.target}
        for ex in examples
    ))


def _snapshot_spec_writer(config: TrainJudgeConfig, template: JudgeTemplate, mode: Mode, think: str) -> Any:
    """After a snapshot is saved: its judge.yaml (so ``from_run: RUN_DIR/snapshots/<m>min`` works)."""

    def write(snap: Path, minutes: float, step: int, seconds: float) -> None:
        spec = trained_judge_spec(config, snap, snap / FINAL_DIR, template, mode, think)
        spec = spec.model_copy(update={"name": f"{spec.name}@{minutes:g}min"})
        write_text_atomic(snap / JUDGE_SPEC_FILE, _spec_yaml(spec, config)
                          + f"# snapshot: {minutes:g} training minutes, step {step}, {seconds:.0f} s\n")

    return write


def _train(config: TrainJudgeConfig, out_dir: Path, examples: list[Any], model_name: str,
           template: JudgeTemplate, template_kwargs: dict[str, Any], snapshots: SnapshotMarks | None,
           show_progress: bool | None = None, callbacks: list[Any] | None = None) -> Any:
    """Train with the recipe's path; ``callbacks`` are TRL ``TrainerCallback``s (the progress bar),
    the frozen-trunk path draws its own bar."""
    r = config.recipe
    protocol = template.protocol
    revision = config.model.revision if model_name == config.model.name else None
    common = {"revision": revision, "trust_remote_code": config.model.trust_remote_code, "resume": "auto"}
    if isinstance(r, (SFTRecipe, DistillRecipe)) and r.train.trunk is not None:
        from judgelab.training.frozen_trunk import TrunkInput, VerdictReadout
        from judgelab.training.trunk_train import train_frozen_trunk

        # a pointwise verdict-only judge is read by its expected score: train that read-out
        verdict = isinstance(r, SFTRecipe) and protocol == "pointwise" and template.answer_prefix is not None
        inputs = [TrunkInput(ex.messages, ex.target, ex.gold if verdict else None, template_kwargs)
                  for ex in examples]
        readout = VerdictReadout(template.answer_prefix, config.score_min, config.score_max) if verdict else None
        return train_frozen_trunk(model_name, inputs, r.train, out_dir, loss="verdict" if verdict else "completion",
                                  readout=readout, **common, progress=show_progress,
                                  callbacks=[trunk_snapshot_callback(snapshots)] if snapshots else ())
    common["callbacks"] = list(callbacks or [])
    if isinstance(r, (SFTRecipe, DistillRecipe)):
        from judgelab.models.tokens import load_tokenizer
        from judgelab.training.sft import SFTExample, train_sft

        sft = [SFTExample(ex.messages, ex.target, template_kwargs) for ex in examples]
        score_range = (config.score_min, config.score_max) if protocol == "pointwise" else None
        if snapshots:
            common["callbacks"].append(trl_snapshot_callback(snapshots, load_tokenizer(model_name)))
        return train_sft(model_name, sft, r.train, out_dir, score_range=score_range, **common)

    from judgelab.rewards.judge_rewards import (
        make_pairwise_judge_reward,
        make_pointwise_judge_reward,
    )
    from judgelab.training.grpo import train_grpo
    from judgelab.training.judge_data import grpo_rows, make_verdict_parser

    parse = make_verdict_parser(protocol, config.score_min, config.score_max)
    if protocol == "pointwise":
        reward = make_pointwise_judge_reward(parse, low=config.score_min, high=config.score_max,
                                             invalid_reward=r.invalid_reward)
    else:
        reward = make_pairwise_judge_reward(parse, invalid_reward=r.invalid_reward,
                                            require_both_orders=r.require_both_orders)
    spec = r.train
    if not spec.chat_template_kwargs and template_kwargs:
        spec = spec.model_copy(update={"chat_template_kwargs": template_kwargs})
    return train_grpo(model_name, grpo_rows(examples, protocol), [reward], spec, out_dir, **common)


def _label_counts(examples: list[Any]) -> dict[str, int]:
    from judgelab.training.judge_data import label_counts

    return label_counts(examples)


# ------------------------------------------------------------------------------------ judge spec
def resolve_judge_model(name: str) -> str:
    """A train-judge run dir stands for its trained model (``RUN_DIR/final``); anything else as is."""
    path = Path(name).expanduser()
    if (path / JUDGE_SPEC_FILE).is_file() and (path / FINAL_DIR).is_dir():
        return str((path / FINAL_DIR).resolve())
    return name


def trained_judge_spec(
    config: TrainJudgeConfig, run_dir: Path, model_path: Path, template: JudgeTemplate, mode: Mode, think: str,
) -> JudgeSpec:
    """The ``JudgeSpec`` that uses the trained model exactly as it was trained."""
    use = config.judge
    readout = use.readout
    if readout is None:
        if template.protocol != "pointwise":
            readout = "text"
        else:
            readout = "expected_only" if mode == "non_reasoning" else "text+expected"
    sampling = use.sampling
    if sampling is None:
        sampling = (
            SamplingSpec(temperature=0.0, max_tokens=16) if mode == "non_reasoning"
            else SamplingSpec(temperature=0.7, top_p=0.95, top_k=20, max_tokens=512)
        )
    backend = HFBackendSpec(
        model=ModelSpec(name=str(model_path.resolve()), dtype=use.dtype, device=use.device),
        batch_size=use.batch_size,
        enable_thinking=(mode == "reasoning") if think == "think_tags" else None,
    )
    return JudgeSpec(
        name=use.name or run_dir.resolve().name, backend=backend, template=template.name, mode=mode,
        sampling=sampling, score_min=config.score_min, score_max=config.score_max, readout=readout,
    )


def _spec_yaml(spec: JudgeSpec, config: TrainJudgeConfig) -> str:
    head = (
        f"# The judge trained by `judgelab train-judge` (recipe {config.recipe.kind}).\n"
        "# Load it with judgelab.stages.train_judge.load_trained_judge_spec(RUN_DIR), or use it as\n"
        "# a judge: entry in another config (eval-judge: `from_run: RUN_DIR`).\n"
    )
    return head + yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def load_trained_judge_spec(path: str | Path) -> JudgeSpec:
    """The ``JudgeSpec`` of a train-judge run (its dir or its ``judge.yaml``).

    If the run dir was moved, the model path is re-pointed at ``RUN_DIR/final``.
    """
    path = Path(path)
    spec_path = path / JUDGE_SPEC_FILE if path.is_dir() else path
    if not spec_path.is_file():
        raise RunDirError(
            f"{spec_path} not found", "point at a completed train-judge run dir (it writes judge.yaml last)"
        )
    data = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec = JudgeSpec.model_validate(data)
    backend = spec.backend
    if isinstance(backend, HFBackendSpec) and not Path(backend.model.name).is_dir():
        moved = spec_path.parent / FINAL_DIR
        if moved.is_dir():
            backend = backend.model_copy(update={"model": backend.model.model_copy(update={"name": str(moved.resolve())})})
            spec = spec.model_copy(update={"backend": backend})
    return spec


__all__ = [
    "EXAMPLES_FILE",
    "JUDGE_SPEC_FILE",
    "JudgeModelRef",
    "TrainJudgeConfig",
    "TrainJudgeResult",
    "TrainedJudgeUse",
    "load_trained_judge_spec",
    "resolve_judge_model",
    "run_train_judge",
    "trained_judge_spec",
]
