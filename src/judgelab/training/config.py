"""Training config schemas (L3): one per trainer, TRL fields explicit, plus per-recipe judge specs.

Every TRL / ``transformers.TrainingArguments`` field that changes what is learned is a first-class,
typed field here with its default set once, so a TRL upgrade cannot silently move results. The
long tail goes through ``trl: {...}``, which is checked against the *installed* TRL config's field
names (an unknown name is a ``ConfigError`` listing close matches) and may not repeat a field that
is first-class here or that judgelab sets itself (``output_dir``, ``bf16``, ...).

Defaults are the small-scale CPU defaults (SmolLM2-135M on 2 cores, minutes per judge). The paper's
values, for a GPU run of the full study, are given in each field's description and set in the
shipped configs under ``experiments/paper/`` and ``experiments/judges/paper_*.yaml``:

    SFT / distill: full fine-tuning, lr 1e-5, bf16
    GRPO:          lr 1e-6, 8 rollouts per prompt, temperature 1.0, clip ε 0.2 / ε_high 0.3, β = 0 (no KL)

Recipes (``JudgeRecipe``, discriminated by ``kind``):

- ``sft``: non-reasoning judge; target = the gold verdict only;
- ``distill``: reasoning judge; target = gold trace + verdict in the judge's own thinking format;
- ``grpo``: GRPO on a judge (from the base model = RL-only, or from a distilled judge); reward
  (M − (ŝ − s)²)/M pointwise, 1 / 0 / −1 pairwise (``judgelab.rewards.judge_rewards``).

Import cost: pydantic only. TRL is imported only to check a non-empty ``trl:`` dict.
"""

from __future__ import annotations

import dataclasses
import difflib
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from judgelab.config.specs import ReasoningEffort, StrictModel
from judgelab.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16"]
LRScheduler = Literal["constant", "constant_with_warmup", "linear", "cosine"]
Optimizer = Literal["adamw_torch", "adamw_torch_fused", "sgd", "adafactor"]
FinetuneMode = Literal["full", "lora"]
GRPOLossType = Literal["grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo"]
ScaleRewards = Literal["group", "batch", "none"]
ReportTarget = Literal["tensorboard", "wandb"]

# Fields judgelab sets itself from its own arguments; not allowed in ``trl:``.
RESERVED_TRL_FIELDS = frozenset(
    {"output_dir", "bf16", "fp16", "resume_from_checkpoint", "use_cpu", "max_steps",
     "num_train_epochs", "peft_config", "logging_dir", "disable_tqdm"}
)


class LoraSpec(StrictModel):
    """LoRA adapters (peft). ``target_modules: all-linear`` = every linear layer except the head."""

    r: int = Field(32, ge=1, description="adapter rank")
    alpha: int = Field(64, ge=1, description="lora_alpha; the update is scaled by alpha / r")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: Literal["all-linear"] | list[str] = "all-linear"
    merge_on_save: bool = Field(
        True, description="save the final model with the adapter merged (a plain HF folder)"
    )


class TrainSpec(StrictModel):
    """Fields every trainer takes (TrainingArguments side)."""

    finetune: FinetuneMode = Field("full", description="paper: full")
    lora: LoraSpec = Field(default_factory=LoraSpec, description="used when finetune: lora")
    train_top_layers: int | None = Field(
        None,
        ge=1,
        description="full fine-tuning of only the top N decoder layers (+ final norm); None = all. "
        "Ignored with LoRA.",
    )
    learning_rate: float = Field(..., gt=0)
    lr_scheduler_type: LRScheduler = "constant"
    warmup_steps: float = Field(0, ge=0, description="int = steps, float in [0, 1) = ratio of total")
    weight_decay: float = Field(0.0, ge=0)
    optim: Optimizer = "adamw_torch"
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    adam_epsilon: float = Field(1e-8, gt=0)
    max_grad_norm: float = Field(1.0, ge=0)
    per_device_train_batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_steps: int | None = Field(
        None, ge=1, description="optimizer steps; None = train num_train_epochs epochs"
    )
    num_train_epochs: float = Field(1.0, gt=0)
    precision: Precision = Field(
        "auto", description="auto = bf16 mixed precision on a bf16-capable GPU, fp32 on CPU"
    )
    activation_checkpointing: bool = Field(
        False, description="recompute activations in backward: less memory, ~20% slower (GPU)"
    )
    save_steps: int = Field(50, ge=1, description="checkpoint every N optimizer steps (for resume)")
    save_total_limit: int | None = Field(2, ge=1, description="keep the last N checkpoints")
    logging_steps: int = Field(5, ge=1)
    report_to: list[ReportTarget] = Field(
        default_factory=list,
        description="experiment trackers for the trainer's logs and judgelab's tracking metrics: "
        "tensorboard (events in OUT/tensorboard), wandb (offline in OUT/wandb unless WANDB_MODE is "
        "set); needs the 'tracking' extra (judgelab.training.trackers)",
    )
    seed: int = 0
    trl: dict[str, Any] = Field(
        default_factory=dict,
        description="pass-through to the TRL config, checked against the installed TRL's field names",
    )

    @model_validator(mode="after")
    def _lora_only_fields(self) -> TrainSpec:
        if self.finetune == "lora" and self.train_top_layers is not None:
            raise ValueError(
                f"train_top_layers={self.train_top_layers} applies to finetune: full only; "
                "with LoRA set lora.target_modules instead, or drop train_top_layers"
            )
        return self


class TrunkSpec(StrictModel):
    """Frozen-trunk training (``judgelab.training.frozen_trunk``): the bottom ``frozen_layers``
    decoder layers run once per example (states cached under the run dir), only the layers above
    them (+ the final norm) train, and the LM head is applied only where there is loss."""

    frozen_layers: int = Field(..., ge=1, description="bottom decoder layers kept frozen and cached")
    cache_dtype: Literal["bfloat16", "float32"] = Field(
        "bfloat16", description="storage of the cached states (bf16 halves memory and disk)"
    )
    cache_precision: Precision = Field(
        "auto",
        description="compute precision of the cache pass; auto = bf16 where the device has bf16 "
        "units and a probe on the first batch measures it faster, else fp32",
    )
    cache_batch_size: int = Field(16, ge=1, description="examples per no-grad trunk forward")
    cache_dir: str | None = Field(
        None,
        description="where the cached states live; None = RUN_DIR/trunk_cache. States are keyed by "
        "token ids and the frozen weights' hash, so runs of the same base model may share one",
    )
    verdict_loss: Literal["score_tokens", "full_vocab"] = Field(
        "score_tokens",
        description="pointwise non-reasoning judges: cross-entropy over the score tokens only "
        "(what the expected-score read-out renormalises over) or over the whole vocabulary",
    )
    train_score_rows: bool = Field(
        False,
        description="also train the LM-head rows of the score tokens (unties a tied head in the "
        "saved checkpoint); pointwise non-reasoning judges only",
    )
    decision_weight: float = Field(
        1.0, ge=0,
        description="completion loss (distill): weight of the decision tokens (PASS / FAIL and the "
        "verdict) relative to the other trace tokens",
    )
    max_train_seconds: float | None = Field(
        None, gt=0, description="stop training after this many seconds (cache pass excluded)"
    )


class SFTTrainSpec(TrainSpec):
    """SFT / distillation on (messages → completion) with loss on the completion only."""

    learning_rate: float = Field(1e-4, gt=0, description="paper: 1e-5 (full fine-tuning)")
    max_length: int = Field(512, ge=8, description="prompt + completion tokens; longer is truncated")
    completion_only_loss: bool = Field(True, description="loss on completion tokens only")
    loss_type: Literal["nll", "dft"] = "nll"
    score_regression_weight: float = Field(
        0.0,
        ge=0,
        description="pointwise judges: add w·((E[s] − s)/(max − min))² at the verdict token, E[s] "
        "read like the judges read it (regression-aware fine-tuning, RAFT); 0 = NLL only (paper)",
    )
    packing: bool = False
    shuffle_dataset: bool = True
    trunk: TrunkSpec | None = Field(
        None,
        description="train with a frozen, cached trunk instead of TRL (judgelab.training."
        "frozen_trunk): ~20x more examples per CPU-minute for small judges",
    )

    @model_validator(mode="after")
    def _check_trl(self) -> SFTTrainSpec:
        check_trl_passthrough("sft", self.trl, first_class=set(type(self).model_fields))
        if self.score_regression_weight > 0 and self.loss_type == "dft":
            raise ValueError("score_regression_weight > 0 needs loss_type: nll (TRL's dft loss replaces the loss)")
        if self.trunk is not None:
            bad = [f"{k}={v!r}" for k, v in (
                ("finetune", self.finetune if self.finetune != "full" else None),
                ("train_top_layers", self.train_top_layers),
                ("loss_type", self.loss_type if self.loss_type != "nll" else None),
                ("packing", self.packing or None),
                ("activation_checkpointing", self.activation_checkpointing or None),
                ("completion_only_loss", None if self.completion_only_loss else False),
                ("trl", self.trl or None),
            ) if v is not None]
            if bad:
                raise ValueError(
                    f"trunk (frozen-trunk training) trains the layers above trunk.frozen_layers fully, "
                    f"on the completion, without TRL; drop {', '.join(bad)}"
                )
        return self


class GRPOTrainSpec(TrainSpec):
    """GRPO (TRL GRPOTrainer) with rewards from plain (async) callables."""

    learning_rate: float = Field(1e-6, gt=0, description="paper: 1e-6")
    per_device_train_batch_size: int = Field(8, ge=1, description="completions per device step")
    num_generations: int = Field(8, ge=2, description="rollouts per prompt; paper: 8")
    max_completion_length: int = Field(256, ge=1)
    temperature: float = Field(1.0, gt=0, description="rollout temperature; paper: 1.0")
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off")
    repetition_penalty: float = Field(1.0, gt=0)
    beta: float = Field(0.0, ge=0, description="KL coefficient; paper: 0 (no KL, no reference model)")
    epsilon: float = Field(0.2, gt=0, description="lower clip; paper: 0.2")
    epsilon_high: float = Field(0.3, gt=0, description="upper clip; paper: 0.3")
    loss_type: GRPOLossType = "dapo"
    scale_rewards: ScaleRewards = "group"
    num_iterations: int = Field(1, ge=1, description="optimisation passes per generation batch (μ)")
    steps_per_generation: int | None = Field(
        None, ge=1, description="None = gradient_accumulation_steps"
    )
    mask_truncated_completions: bool = False
    importance_sampling_level: Literal["token", "sequence"] = "token"
    disable_dropout: bool = True
    shuffle_dataset: bool = True
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="e.g. {enable_thinking: true} for Qwen3 templates"
    )
    log_completions: bool = False

    @model_validator(mode="after")
    def _check_trl(self) -> GRPOTrainSpec:
        check_trl_passthrough("grpo", self.trl, first_class=set(type(self).model_fields))
        if self.epsilon_high < self.epsilon:
            raise ValueError(
                f"epsilon_high={self.epsilon_high} is below epsilon={self.epsilon}; "
                "set epsilon_high >= epsilon (paper: 0.2 / 0.3)"
            )
        per_step = self.per_device_train_batch_size * (
            self.steps_per_generation or self.gradient_accumulation_steps
        )
        if per_step % self.num_generations:
            raise ValueError(
                f"the generation batch (per_device_train_batch_size × steps_per_generation = "
                f"{per_step}) must be a multiple of num_generations={self.num_generations}; "
                "e.g. per_device_train_batch_size: 8 with num_generations: 8 or 4"
            )
        return self


# ------------------------------------------------------------------------------------------------
# recipes


class _RecipeBase(StrictModel):
    rubric_guided: bool = Field(
        False, description="put the gold's per-instruction rubric in the judge prompt (train and use)"
    )


class SFTRecipe(_RecipeBase):
    """Non-reasoning judge: target = the gold verdict only (pointwise score or pairwise choice)."""

    kind: Literal["sft"] = "sft"
    train: SFTTrainSpec = Field(default_factory=SFTTrainSpec)


class DistillRecipe(_RecipeBase):
    """Reasoning judge: target = gold trace + verdict in the judge's thinking format."""

    kind: Literal["distill"] = "distill"
    train: SFTTrainSpec = Field(default_factory=SFTTrainSpec)
    trace_effort: ReasoningEffort | None = Field(
        None, description="train on gold traces of this reasoning effort; None = the gold's default"
    )
    require_effort_agreement: bool = Field(
        True,
        description="with a lower trace_effort, keep only items whose verdict at that effort "
        "matches the high-effort verdict",
    )


class GRPORecipe(_RecipeBase):
    """GRPO on a judge; ``init: base`` is the paper's RL-only variant."""

    kind: Literal["grpo"] = "grpo"
    init: Literal["base", "distill"] = "distill"
    train: GRPOTrainSpec = Field(default_factory=GRPOTrainSpec)
    invalid_reward: float = Field(-1.0, le=0, description="reward for an unparseable verdict")
    require_both_orders: bool = Field(
        False, description="pairwise: reward 1 only if the verdict is right in both orders"
    )


JudgeRecipe = Annotated[SFTRecipe | DistillRecipe | GRPORecipe, Field(discriminator="kind")]

# ------------------------------------------------------------------------------------------------
# TRL pass-through


@cache
def trl_field_names(kind: Literal["sft", "grpo"]) -> frozenset[str]:
    """Field names of the installed TRL's ``SFTConfig`` / ``GRPOConfig`` (imports trl)."""
    if kind == "sft":
        from trl import SFTConfig as cls
    else:
        from trl import GRPOConfig as cls
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)


def check_trl_passthrough(
    kind: Literal["sft", "grpo"], trl: dict[str, Any], *, first_class: set[str]
) -> None:
    """Raise ``ConfigError`` for a ``trl:`` key that TRL does not know or judgelab owns."""
    if not trl:
        return
    names = trl_field_names(kind)
    cls = "SFTConfig" if kind == "sft" else "GRPOConfig"
    for key in trl:
        if key in first_class or key in RESERVED_TRL_FIELDS:
            where = (
                f"set it as the first-class field '{key}'" if key in first_class
                else "judgelab sets it from the run (output dir, precision, steps, resume)"
            )
            raise ConfigError(f"trl.{key}: not allowed in the pass-through", where)
        if key not in names:
            close = difflib.get_close_matches(key, sorted(names | first_class), n=5, cutoff=0.6)
            hint = (
                f"did you mean: {', '.join(close)}?" if close
                else f"see the fields of trl.{cls} (TRL installed here)"
            )
            raise ConfigError(f"trl.{key}: not a field of the installed trl.{cls}", hint)


__all__ = [
    "DistillRecipe",
    "FinetuneMode",
    "GRPORecipe",
    "GRPOTrainSpec",
    "JudgeRecipe",
    "LoraSpec",
    "Precision",
    "ReportTarget",
    "SFTRecipe",
    "SFTTrainSpec",
    "TrainSpec",
    "TrunkSpec",
    "check_trl_passthrough",
    "trl_field_names",
]
