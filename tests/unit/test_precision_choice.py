"""CPU/CUDA precision and dtype choice, with ``torch.cuda`` faked (no GPU needed).

Checked on a real H100 by ``benchmarks/bench_gpu.py`` (docs/scaling.md): with ``precision: auto``
the trainer got ``bf16=True`` (fp32 master weights, bf16 autocast) and the hf backend's
``dtype: auto`` loaded bfloat16. These tests pin that logic on machines without a GPU.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from judgelab.models.loading import resolve_dtype
from judgelab.training.config import GRPOTrainSpec, SFTTrainSpec
from judgelab.training.model_setup import common_trainer_kwargs, resolve_precision


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch):
    """Make torch report a CUDA device; ``fake_gpu(bf16=False)`` for one without bf16 (e.g. V100)."""

    def set_gpu(*, available: bool = True, bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return set_gpu


@pytest.mark.parametrize("spec_cls", [SFTTrainSpec, GRPOTrainSpec])
def test_auto_is_bf16_on_a_bf16_gpu_and_fp32_elsewhere(fake_gpu, spec_cls, tmp_path: Path):
    fake_gpu(available=True, bf16=True)
    assert resolve_precision(spec_cls()) == "bf16"
    kw = common_trainer_kwargs(spec_cls(), tmp_path)
    assert kw["bf16"] is True and kw["fp16"] is False

    fake_gpu(available=True, bf16=False)  # a GPU without bf16: no silent fp16
    assert resolve_precision(spec_cls()) == "fp32"
    assert common_trainer_kwargs(spec_cls(), tmp_path)["bf16"] is False

    fake_gpu(available=False, bf16=False)
    assert resolve_precision(spec_cls()) == "fp32"
    kw = common_trainer_kwargs(spec_cls(), tmp_path)
    assert kw["bf16"] is False and kw["fp16"] is False


def test_explicit_precision_wins(fake_gpu, caplog: pytest.LogCaptureFixture):
    fake_gpu(available=True, bf16=True)
    assert resolve_precision(SFTTrainSpec(precision="fp32")) == "fp32"
    fake_gpu(available=False)
    with caplog.at_level(logging.WARNING, logger="judgelab.training.model_setup"):
        assert resolve_precision(SFTTrainSpec(precision="bf16")) == "bf16"
    assert "bf16 on CPU" in caplog.text


def test_backend_dtype_auto(fake_gpu):
    fake_gpu(available=True, bf16=True)
    assert resolve_dtype("auto", "cuda") is torch.bfloat16
    assert resolve_dtype("auto", "cuda:0") is torch.bfloat16
    assert resolve_dtype("auto", "cpu") is torch.float32  # CPU keeps fp32 even beside a GPU
    assert resolve_dtype("float32", "cuda") is torch.float32
    fake_gpu(available=True, bf16=False)
    assert resolve_dtype("auto", "cuda") is torch.float32
