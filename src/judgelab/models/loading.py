"""Load a causal LM + tokenizer from a ``ModelSpec`` (alias, local folder or hub id).

One place for the rules every in-process user (the ``hf`` backend, training) needs: name
resolution (``resolve_model``), device and dtype choice, offline-friendly loading and turning load
failures into ``BackendError``s with a hint. torch/transformers are imported inside the functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgelab.config.specs import DType, ModelSpec
from judgelab.errors import BackendError, ConfigError
from judgelab.models.resolve import resolve_model

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else is checked and returned."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"invalid device {device!r}: {e}", hint="use auto, cpu, cuda or cuda:N") from e
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available",
                          hint="use device: auto or cpu")
    return device


def resolve_dtype(dtype: DType, device: str) -> torch.dtype:
    """``auto`` -> bfloat16 on a GPU that supports it, else float32."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel, in eval mode, on ``device``
    tokenizer: Any  # transformers tokenizer with a pad token
    name: str  # what was loaded: prepared/local folder path or hub id
    device: str
    dtype: torch.dtype


def load_causal_lm(spec: ModelSpec) -> LoadedModel:
    """Resolve ``spec.name`` and load model + tokenizer (see ``judgelab.models.resolve``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = resolve_model(spec.name, spec.revision)
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    local = Path(name).is_dir()
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if local:
        kwargs["local_files_only"] = True
    elif spec.revision is not None:
        kwargs["revision"] = spec.revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
    except OSError as e:
        where = "local folder" if local else "hub id"
        raise BackendError(
            f"could not load model {spec.name!r} ({where} {name}): {e}",
            hint="prepare it (`judgelab models prepare ALIAS`, see `judgelab models list`) or give "
            "a local path; hub ids need network access or a populated HF cache",
        ) from e
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise BackendError(f"tokenizer of {spec.name!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
        logger.info("tokenizer of %r has no pad token; using eos %r", spec.name, tokenizer.eos_token)
    model.to(device)
    model.eval()
    logger.info("loaded %r from %s on %s (%s)", spec.name, name, device, dtype)
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, device=device, dtype=dtype)


__all__ = ["LoadedModel", "load_causal_lm", "resolve_device", "resolve_dtype"]
