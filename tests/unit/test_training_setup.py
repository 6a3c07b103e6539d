"""training.model_setup without a model: resume detection, precision choice, trainer kwargs."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgelab.errors import RunDirError
from judgelab.training.config import SFTTrainSpec
from judgelab.training.model_setup import (
    build_peft_config,
    common_trainer_kwargs,
    find_resume_checkpoint,
    resolve_precision,
)


def test_resume_auto_picks_newest_checkpoint(tmp_path: Path):
    assert find_resume_checkpoint(tmp_path / "missing", "auto") is None
    assert find_resume_checkpoint(tmp_path, "auto") is None
    for step in (5, 40, 9):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-100").write_text("a file, not a checkpoint")
    assert find_resume_checkpoint(tmp_path, "auto") == str(tmp_path / "checkpoint-40")
    assert find_resume_checkpoint(tmp_path, "never") is None
    assert find_resume_checkpoint(tmp_path, str(tmp_path / "checkpoint-5")) == str(tmp_path / "checkpoint-5")
    with pytest.raises(RunDirError):
        find_resume_checkpoint(tmp_path, str(tmp_path / "checkpoint-6"))


def test_precision_on_this_machine():
    import torch

    auto = resolve_precision(SFTTrainSpec())
    expected = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    assert auto == expected
    assert resolve_precision(SFTTrainSpec(precision="fp32")) == "fp32"


def test_trainer_kwargs_are_explicit(tmp_path: Path):
    kw = common_trainer_kwargs(SFTTrainSpec(max_steps=12, learning_rate=2e-4), tmp_path)
    assert kw["max_steps"] == 12 and kw["learning_rate"] == 2e-4
    assert kw["save_only_model"] is False  # optimizer state kept: resume is exact
    assert kw["report_to"] == "none"
    assert common_trainer_kwargs(SFTTrainSpec(), tmp_path)["max_steps"] == -1  # epochs instead


def test_peft_config_only_for_lora():
    assert build_peft_config(SFTTrainSpec()) is None
    cfg = build_peft_config(SFTTrainSpec(finetune="lora", lora={"r": 8, "alpha": 16}))
    assert cfg.r == 8 and cfg.lora_alpha == 16 and cfg.task_type == "CAUSAL_LM"
