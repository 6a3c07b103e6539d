"""GRPO with TRL's GRPOTrainer; rewards are plain (async) callables passed in by the stage.

One function serves both GRPO uses in the study: training a *judge* (reward = agreement with the
gold verdict, ``judgelab.rewards.judge_rewards``) and training a *policy* (reward = a proxy judge's
expected score). ``training/`` never imports ``judges/`` or ``evaluation/``: the stage builds the
reward callables and hands them in.

Reward callables follow TRL's contract: ``f(prompts, completions, **kwargs) -> list[float | None]``
(or an ``async def`` with the same signature, run concurrently by TRL). ``kwargs`` carries every
extra column of the prompt rows (e.g. ``gold_score``), repeated per rollout, plus TRL's
``trainer_state``, ``log_metric`` and ``log_extra``. ``None`` means "no reward from this function".

A reward callable that has a ``bind_stop_token_ids`` attribute (the judge rewards of
``judgelab.rewards.judge_rewards``) is given the trainer's end-of-completion token ids (its eos ids
and the pad id — TRL's own test for a truncated completion) once the trainer is built, so it can
tell from TRL's ``completion_ids`` kwarg which completions the token limit cut off.

The dataset rows are ``{"prompt": [chat messages], **extra columns}`` (TRL conversational format),
so completions arrive as ``[{"role": "assistant", "content": ...}]``;
``judgelab.rewards.trl_format.completion_text`` turns either form into a string.

torch / transformers / trl / peft are imported inside ``train_grpo``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from judgelab.errors import ConfigError, DataError
from judgelab.training.config import GRPOTrainSpec
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

logger = logging.getLogger(__name__)

RewardFunc = (
    Callable[..., Sequence[float | None]] | Callable[..., Awaitable[Sequence[float | None]]]
)


def grpo_rows(prompts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check GRPO prompt rows: ``prompt`` = chat messages ending with a user turn, extras kept."""
    if not prompts:
        raise DataError("no GRPO prompts to train on")
    rows = []
    keys = set(prompts[0])
    for i, row in enumerate(prompts):
        msgs = row.get("prompt")
        if not isinstance(msgs, list) or not msgs:
            raise DataError(f"GRPO row {i}: 'prompt' must be a non-empty list of chat messages")
        if msgs[-1].get("role") != "user":
            raise DataError(f"GRPO row {i}: the prompt must end with a user message")
        if set(row) != keys:
            raise DataError(
                f"GRPO row {i}: columns {sorted(row)} differ from row 0 {sorted(keys)}",
                "every row needs the same extra columns (they become reward kwargs)",
            )
        rows.append(dict(row))
    return rows


def _reward_name(f: Any) -> str:
    return getattr(f, "__name__", type(f).__name__)


def build_grpo_config(
    spec: GRPOTrainSpec, output_dir: Path, reward_weights: Sequence[float] | None
) -> Any:
    """The TRL ``GRPOConfig`` for ``spec`` (explicit fields, then the checked pass-through)."""
    from trl import GRPOConfig

    kwargs = common_trainer_kwargs(spec, output_dir)
    kwargs.update(
        num_generations=spec.num_generations,
        max_completion_length=spec.max_completion_length,
        temperature=spec.temperature,
        top_p=spec.top_p,
        top_k=spec.top_k,
        min_p=None,
        repetition_penalty=spec.repetition_penalty,
        beta=spec.beta,
        epsilon=spec.epsilon,
        epsilon_high=spec.epsilon_high,
        loss_type=spec.loss_type,
        scale_rewards=spec.scale_rewards,
        num_iterations=spec.num_iterations,
        steps_per_generation=spec.steps_per_generation,
        mask_truncated_completions=spec.mask_truncated_completions,
        importance_sampling_level=spec.importance_sampling_level,
        disable_dropout=spec.disable_dropout,
        shuffle_dataset=spec.shuffle_dataset,
        chat_template_kwargs=dict(spec.chat_template_kwargs) or None,
        log_completions=spec.log_completions,
        reward_weights=list(reward_weights) if reward_weights is not None else None,
        multi_objective_aggregation="sum_then_normalize",
        remove_unused_columns=False,  # extra columns are reward kwargs
        use_vllm=False,
    )
    kwargs.update(spec.trl)
    try:
        return GRPOConfig(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"TRL rejected the GRPO config: {e}", "check the train: section") from e


def train_grpo(
    model: str,
    prompts: Sequence[Mapping[str, Any]],
    reward_funcs: Sequence[RewardFunc],
    spec: GRPOTrainSpec,
    output_dir: str | Path,
    *,
    reward_weights: Sequence[float] | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    resume: ResumeMode = "auto",
    callbacks: Sequence[Any] = (),
    tracker_dir: str | Path | None = None,
) -> TrainResult:
    """Run GRPO on ``model`` over ``prompts`` with ``reward_funcs``; return the saved model path.

    ``prompts``: rows ``{"prompt": [messages], **extra}``; extras reach the reward functions as
    keyword lists. ``reward_weights``: one per reward function (None = all 1). ``tracker_dir``: where
    ``spec.report_to`` trackers write (default ``output_dir``; ``judgelab.training.trackers``).
    """
    from datasets import Dataset
    from trl import GRPOTrainer

    if not reward_funcs:
        raise ConfigError("train_grpo needs at least one reward function")
    if reward_weights is not None and len(reward_weights) != len(reward_funcs):
        raise ConfigError(
            f"{len(reward_weights)} reward_weights for {len(reward_funcs)} reward functions",
            "give one weight per reward function, or none",
        )
    for f in reward_funcs:
        if not callable(f):
            raise ConfigError(f"reward function {f!r} is not callable")
    check_trackers(spec.report_to)  # before loading a model: a missing extra fails fast
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = grpo_rows(prompts)
    args = build_grpo_config(spec, output_dir, reward_weights)
    resume_from = find_resume_checkpoint(output_dir, resume)
    lm, tokenizer, resolved = load_model_for_training(
        model, revision=revision, trust_remote_code=trust_remote_code
    )
    apply_trainable_selection(lm, spec)
    with tracker_session(spec.report_to, tracker_dir or output_dir):  # report_to: training.trackers
        trainer = GRPOTrainer(
            model=lm,
            reward_funcs=list(reward_funcs),
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=build_peft_config(spec),
            callbacks=list(callbacks) or None,
        )
        eos_ids = getattr(trainer, "eos_token_ids", None) or [tokenizer.eos_token_id]
        stop_ids = {int(t) for t in [*eos_ids, tokenizer.pad_token_id] if t is not None}
        for f in reward_funcs:
            bind = getattr(f, "bind_stop_token_ids", None)
            if callable(bind):
                bind(stop_ids)
        trainable, total = count_params(trainer.model)
        logger.info(
            "GRPO %s on %d prompts, rewards %s: %s, %d/%d params trainable, resume=%s",
            resolved, len(rows), [_reward_name(f) for f in reward_funcs], spec.finetune,
            trainable, total, resume_from,
        )
        return train_and_save(trainer, tokenizer, spec, output_dir, resume_from, trainable, total)


__all__ = ["RewardFunc", "build_grpo_config", "grpo_rows", "train_grpo"]
