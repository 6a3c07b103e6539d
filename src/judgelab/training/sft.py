"""SFT on (messages → completion) examples with loss on the completion only (TRL SFTTrainer).

Used by the ``sft`` recipe (completion = the gold verdict, e.g. ``Score: 7``) and the ``distill``
recipe (completion = the gold's trace + verdict in the judge's thinking format, e.g.
``<think>…</think>\\nScore: 7`` for Qwen3-style templates). The data is a TRL *conversational
prompt-completion* dataset: ``prompt`` = the judge's chat messages, ``completion`` = one assistant
message, so the chat template renders training sequences exactly as at use time and TRL masks the
prompt tokens out of the loss (``completion_only_loss``). Per-example ``chat_template_kwargs``
(e.g. ``enable_thinking``) reach the template.

    result = train_sft("smollm2-135m-instruct", examples, SFTTrainSpec(max_steps=100), out_dir)
    result.model_path  # out_dir/final, a plain HF folder

torch / transformers / trl / peft are imported inside ``train_sft``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgelab.errors import ConfigError, DataError
from judgelab.training.config import SFTTrainSpec
from judgelab.training.model_setup import (
    ResumeMode,
    TrainResult,
    apply_trainable_selection,
    build_peft_config,
    common_trainer_kwargs,
    count_params,
    find_resume_checkpoint,
    load_model_for_training,
    train_and_save,
)
from judgelab.training.trackers import check_trackers, tracker_session
from judgelab.types import ChatMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTExample:
    """One training example: the judge's prompt messages and the target assistant text."""

    messages: Sequence[ChatMessage]
    completion: str
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)


def sft_rows(examples: Sequence[SFTExample]) -> list[dict[str, Any]]:
    """TRL conversational prompt-completion rows; checks roles and emptiness."""
    if not examples:
        raise DataError("no SFT examples to train on", "check the judge-training data split")
    rows = []
    any_kwargs = any(ex.chat_template_kwargs for ex in examples)
    for i, ex in enumerate(examples):
        if not ex.messages:
            raise DataError(f"SFT example {i}: empty prompt messages")
        for m in ex.messages:
            if m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
                raise DataError(f"SFT example {i}: bad message {m!r}", "need {role, content: str}")
        if ex.messages[-1]["role"] == "assistant":
            raise DataError(
                f"SFT example {i}: the prompt ends with an assistant message",
                "the completion is the assistant turn; end the prompt with a user message",
            )
        if not ex.completion.strip():
            raise DataError(f"SFT example {i}: empty completion")
        row: dict[str, Any] = {
            "prompt": [{"role": m["role"], "content": m["content"]} for m in ex.messages],
            "completion": [{"role": "assistant", "content": ex.completion}],
        }
        if any_kwargs:
            row["chat_template_kwargs"] = dict(ex.chat_template_kwargs)
        rows.append(row)
    return rows


def build_sft_config(spec: SFTTrainSpec, output_dir: Path) -> Any:
    """The TRL ``SFTConfig`` for ``spec`` (explicit fields, then the checked pass-through)."""
    from trl import SFTConfig

    kwargs = common_trainer_kwargs(spec, output_dir)
    kwargs.update(
        max_length=spec.max_length,
        completion_only_loss=spec.completion_only_loss,
        assistant_only_loss=False,
        loss_type=spec.loss_type,
        packing=spec.packing,
        shuffle_dataset=spec.shuffle_dataset,
        dataset_num_proc=None,
    )
    kwargs.update(spec.trl)
    try:
        return SFTConfig(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"TRL rejected the SFT config: {e}", "check the train: section") from e


def train_sft(
    model: str,
    examples: Sequence[SFTExample],
    spec: SFTTrainSpec,
    output_dir: str | Path,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    resume: ResumeMode = "auto",
    callbacks: Sequence[Any] = (),
    tracker_dir: str | Path | None = None,
    score_range: tuple[int, int] | None = None,
) -> TrainResult:
    """Fine-tune ``model`` on ``examples``; return where the final model was saved.

    ``model``: an alias, local folder or hub id (``judgelab.models.resolve``). ``resume``: "auto"
    continues from the newest ``output_dir/checkpoint-*`` if any, "never" starts fresh, or a path.
    ``callbacks``: transformers ``TrainerCallback``s (e.g. a gold-agreement probe from the stage).
    ``score_range``: (min, max) of a pointwise judge's scale; needed when
    ``spec.score_regression_weight > 0`` (``judgelab.training.score_loss``). ``tracker_dir``: where
    ``spec.report_to`` trackers write (default ``output_dir``; ``judgelab.training.trackers``).
    """
    from datasets import Dataset
    from trl import SFTTrainer

    if spec.score_regression_weight > 0 and score_range is None:
        raise ConfigError(
            "score_regression_weight > 0 needs a pointwise score range",
            "score regression applies to pointwise judges only; set it to 0 for pairwise data",
        )
    check_trackers(spec.report_to)  # before loading a model: a missing extra fails fast
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = sft_rows(examples)
    args = build_sft_config(spec, output_dir)
    resume_from = find_resume_checkpoint(output_dir, resume)
    lm, tokenizer, resolved = load_model_for_training(
        model, revision=revision, trust_remote_code=trust_remote_code
    )
    apply_trainable_selection(lm, spec)
    trainer_cls: Any = SFTTrainer
    extra: dict[str, Any] = {}
    if spec.score_regression_weight > 0:
        from judgelab.training.score_loss import score_regression_trainer_class, score_tokens

        assert score_range is not None
        trainer_cls = score_regression_trainer_class()
        extra = {"score_tokens": score_tokens(tokenizer, *score_range),
                 "score_weight": spec.score_regression_weight}
    with tracker_session(spec.report_to, tracker_dir or output_dir):  # report_to: training.trackers
        trainer = trainer_cls(
            model=lm,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=build_peft_config(spec),
            callbacks=list(callbacks) or None,
            **extra,
        )
        trainable, total = count_params(trainer.model)
        logger.info(
            "SFT %s on %d examples: %s, %d/%d params trainable, score regression w=%s, resume=%s",
            resolved, len(rows), spec.finetune, trainable, total, spec.score_regression_weight, resume_from,
        )
        return train_and_save(trainer, tokenizer, spec, output_dir, resume_from, trainable, total)


__all__ = ["SFTExample", "build_sft_config", "sft_rows", "train_sft"]
