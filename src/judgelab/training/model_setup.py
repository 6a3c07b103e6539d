"""What SFT and GRPO share: load the model to train, choose what trains, precision, checkpoints, save.

- model names go through ``judgelab.models.resolve.resolve_model`` (alias → prepared folder, local
  folder, or hub id — the real hub code path, which fails offline with a hint);
- weights are loaded in fp32; ``precision: bf16`` means bf16 *mixed* precision (autocast) on a
  GPU, ``auto`` picks it on a bf16-capable GPU and fp32 elsewhere (CPU);
- ``finetune: lora`` builds a peft ``LoraConfig`` for the trainer; ``train_top_layers: N`` freezes
  everything but the top N decoder layers and the final norm (full fine-tuning of a slice);
- checkpoints are ``output_dir/checkpoint-<step>`` (transformers Trainer layout, optimizer
  included) and ``resume="auto"`` continues from the newest one;
- the final model is saved to ``output_dir/final`` as a plain HF folder (LoRA merged by default),
  with the tokenizer, so the hf backend loads it like any other model.

torch / transformers / peft are imported inside the functions.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from judgelab.errors import BackendError, ConfigError, RunDirError
from judgelab.training.config import TrainSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

FINAL_DIRNAME = "final"
RESULT_FILENAME = "judgelab-train.json"
ResumeMode = Literal["auto", "never"] | str


@dataclass
class TrainResult:
    """What a training call returns; also written to ``<final>/judgelab-train.json``."""

    model_path: Path  # the final, loadable HF folder
    output_dir: Path
    global_step: int
    train_seconds: float
    resumed_from: str | None
    trainable_params: int
    total_params: int
    log_history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_path"] = str(self.model_path)
        d["output_dir"] = str(self.output_dir)
        return d


def resolve_precision(spec: TrainSpec) -> Literal["fp32", "bf16"]:
    import torch

    if spec.precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if spec.precision == "bf16" and not torch.cuda.is_available():
        logger.warning("precision: bf16 on CPU runs bf16 autocast on CPU (slow, lossy); use fp32")
    return spec.precision


def cpu_has_bf16() -> bool:
    """True when the CPU reports native bf16 units (x86 avx512_bf16 / amx_bf16, or Arm bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16|bf16)\b", flags))


def probe_faster_bf16(fn: Callable[[bool], None], repeats: int = 2) -> tuple[bool, dict[str, float]]:
    """Run ``fn(bf16)`` for both settings (after one warm-up each) and report which was faster."""
    times: dict[str, float] = {}
    for bf16 in (False, True):
        fn(bf16)
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(bf16)
        times["bf16" if bf16 else "fp32"] = (time.perf_counter() - t0) / repeats
    return times["bf16"] < times["fp32"], times


def wants_bf16(setting: str, device: str) -> bool | None:
    """True / False when decided by the setting alone; None = auto on a bf16 CPU (probe it)."""
    import torch

    if setting == "bf16":
        return True
    if setting == "fp32":
        return False
    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return None if cpu_has_bf16() else False


def autocast(device: str, bf16: bool) -> Any:
    import torch

    return torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)


def load_model_for_training(
    model: str, *, revision: str | None = None, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """Resolve and load (fp32 weights) model + tokenizer; set a pad token if the tokenizer has none."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from judgelab.models.resolve import resolve_model

    name = resolve_model(model, revision)
    local = Path(name).is_dir()
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if local:
        kwargs["local_files_only"] = True
    elif revision is not None:
        kwargs["revision"] = revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, **kwargs)
    except OSError as e:
        raise BackendError(
            f"could not load model {model!r} for training ({name}): {e}",
            hint="prepare it (`judgelab models prepare ALIAS`) or give a local folder; hub ids "
            "need network access or a populated HF cache",
        ) from e
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise BackendError(f"tokenizer of {model!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return lm, tokenizer, name


def _decoder_layers(lm: PreTrainedModel) -> Any:
    base = getattr(lm, lm.base_model_prefix, None)
    layers = getattr(base, "layers", None)
    if layers is None:
        raise ConfigError(
            f"train_top_layers: cannot find decoder layers on {type(lm).__name__}",
            hint="use finetune: lora or drop train_top_layers",
        )
    return base, layers


def apply_trainable_selection(lm: PreTrainedModel, spec: TrainSpec) -> None:
    """Freeze all but the top ``spec.train_top_layers`` decoder layers (+ final norm) if set."""
    if spec.finetune != "full" or spec.train_top_layers is None:
        return
    base, layers = _decoder_layers(lm)
    n = len(layers)
    if spec.train_top_layers > n:
        raise ConfigError(
            f"train_top_layers={spec.train_top_layers} but the model has {n} decoder layers",
            hint=f"use at most {n}, or null for all",
        )
    for p in lm.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[n - spec.train_top_layers :]:
        for p in layer.parameters():
            p.requires_grad_(True)
    norm = getattr(base, "norm", None)
    if norm is not None:
        for p in norm.parameters():
            p.requires_grad_(True)


def build_peft_config(spec: TrainSpec) -> Any:
    """peft ``LoraConfig`` for ``finetune: lora``, else None."""
    if spec.finetune != "lora":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=spec.lora.r,
        lora_alpha=spec.lora.alpha,
        lora_dropout=spec.lora.dropout,
        target_modules=spec.lora.target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )


def common_trainer_kwargs(spec: TrainSpec, output_dir: Path) -> dict[str, Any]:
    """TrainingArguments fields shared by SFTConfig and GRPOConfig, all explicit."""
    import torch

    precision = resolve_precision(spec)
    return {
        "output_dir": str(output_dir),
        # without CUDA, transformers treats a torchrun / accelerate launch as independent processes
        # unless use_cpu is set: with it, N CPU processes train one model with DDP over gloo
        "use_cpu": not torch.cuda.is_available(),
        "learning_rate": spec.learning_rate,
        "lr_scheduler_type": spec.lr_scheduler_type,
        "warmup_steps": spec.warmup_steps,
        "weight_decay": spec.weight_decay,
        "optim": spec.optim,
        "adam_beta1": spec.adam_beta1,
        "adam_beta2": spec.adam_beta2,
        "adam_epsilon": spec.adam_epsilon,
        "max_grad_norm": spec.max_grad_norm,
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "max_steps": spec.max_steps if spec.max_steps is not None else -1,
        "num_train_epochs": spec.num_train_epochs,
        "bf16": precision == "bf16",
        "fp16": False,
        "activation_checkpointing": spec.activation_checkpointing,
        "save_strategy": "steps",
        "save_steps": spec.save_steps,
        "save_total_limit": spec.save_total_limit,
        "save_only_model": False,  # optimizer + scheduler + RNG state, for an exact resume
        "logging_steps": spec.logging_steps,
        "logging_first_step": True,
        "seed": spec.seed,
        "data_seed": spec.seed,
        "report_to": list(spec.report_to) or "none",  # where: judgelab.training.trackers
        "disable_tqdm": True,  # judgelab.training.progress shows its own bar
        "dataloader_num_workers": 0,
    }


def find_resume_checkpoint(output_dir: Path, resume: ResumeMode) -> str | None:
    """``"auto"`` → newest ``checkpoint-*`` in output_dir or None; ``"never"`` → None; else a path."""
    from transformers.trainer_utils import get_last_checkpoint

    if resume == "never":
        return None
    if resume == "auto":
        if not output_dir.is_dir():
            return None
        return get_last_checkpoint(str(output_dir))
    path = Path(resume)
    if not path.is_dir():
        raise RunDirError(
            f"resume checkpoint {resume!r} does not exist",
            hint="pass a checkpoint-<step> folder, 'auto' (newest in the output dir) or 'never'",
        )
    return str(path)


def count_params(lm: Any) -> tuple[int, int]:
    total = sum(p.numel() for p in lm.parameters())
    trainable = sum(p.numel() for p in lm.parameters() if p.requires_grad)
    return trainable, total


def save_final(trainer: Any, tokenizer: Any, spec: TrainSpec, output_dir: Path) -> Path:
    """Save the trained model (LoRA merged if configured) + tokenizer to ``output_dir/final``.

    Every rank calls this; only the main process writes. Full fine-tuning goes through
    ``trainer.save_model``, which gathers ZeRO-3 / FSDP shards first. A LoRA merge needs the whole
    model in one process: with DDP (or one process) rank 0 merges its replica; under ZeRO-3 / FSDP
    it is refused (save the adapter: ``lora.merge_on_save: false``).
    """
    final = output_dir / FINAL_DIRNAME
    sharded = trainer.is_fsdp_enabled or (
        trainer.is_deepspeed_enabled and getattr(trainer.accelerator.state.deepspeed_plugin, "zero_stage", 0) == 3
    )
    if spec.finetune == "lora" and spec.lora.merge_on_save:
        if sharded:
            raise ConfigError(
                "cannot merge LoRA adapters into sharded (ZeRO-3 / FSDP) weights",
                "set lora.merge_on_save: false to save the adapter, or train with DDP / ZeRO-2",
            )
        if trainer.args.should_save:
            lm = trainer.model.merge_and_unload()
            lm.save_pretrained(str(final))
            gen_cfg = getattr(lm, "generation_config", None)
            if gen_cfg is not None:
                gen_cfg.save_pretrained(str(final))
    else:
        trainer.save_model(str(final))  # gathers sharded weights; writes on the main process only
    if trainer.args.should_save:
        tokenizer.save_pretrained(str(final))
    trainer.accelerator.wait_for_everyone()
    return final


def write_result(result: TrainResult) -> None:
    path = result.model_path / RESULT_FILENAME
    path.write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")


def run_trainer(trainer: Any, resume_from: str | None) -> tuple[float, int]:
    t0 = time.monotonic()
    out = trainer.train(resume_from_checkpoint=resume_from)
    return time.monotonic() - t0, int(out.global_step)


def train_and_save(
    trainer: Any, tokenizer: Any, spec: TrainSpec, output_dir: Path, resume_from: str | None,
    trainable: int, total: int,
) -> TrainResult:
    """The tail shared by every recipe: train (or resume), save ``final/``, write the result file."""
    seconds, step = run_trainer(trainer, resume_from)
    final = save_final(trainer, tokenizer, spec, output_dir)
    result = TrainResult(
        model_path=final,
        output_dir=output_dir,
        global_step=step,
        train_seconds=seconds,
        resumed_from=resume_from,
        trainable_params=trainable,
        total_params=total,
        log_history=list(trainer.state.log_history),
    )
    if trainer.args.should_save:
        write_result(result)
    trainer.accelerator.wait_for_everyone()
    return result


__all__ = [
    "FINAL_DIRNAME",
    "RESULT_FILENAME",
    "TrainResult",
    "apply_trainable_selection",
    "autocast",
    "cpu_has_bf16",
    "build_peft_config",
    "common_trainer_kwargs",
    "count_params",
    "find_resume_checkpoint",
    "load_model_for_training",
    "probe_faster_bf16",
    "resolve_precision",
    "run_trainer",
    "save_final",
    "train_and_save",
    "wants_bf16",
    "write_result",
]
