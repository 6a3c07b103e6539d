"""report_to settings and the progress bar (issue 11, item 7). The trackers themselves (TensorBoard
event files, an offline W&B run) are read back from real trainings in tests/integration/test_trackers.py."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from judgelab.errors import MissingDependencyError
from judgelab.training.trackers import check_trackers, tensorboard_dir, tracker_session


def test_tracker_session_sets_and_restores_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_PROJECT", "mine")
    with tracker_session(["tensorboard", "wandb"], tmp_path):
        assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / "tensorboard")
        assert os.environ["WANDB_MODE"] == "offline" and os.environ["WANDB_DIR"] == str(tmp_path)
        assert os.environ["WANDB_PROJECT"] == "mine"  # the user's setting wins
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ and "WANDB_MODE" not in os.environ
    assert os.environ["WANDB_PROJECT"] == "mine"
    monkeypatch.setenv("WANDB_MODE", "online")
    with tracker_session(["wandb"], tmp_path):
        assert os.environ["WANDB_MODE"] == "online"
    assert tensorboard_dir(tmp_path) == tmp_path / "tensorboard"
    with tracker_session([], tmp_path):  # nothing asked: nothing touched
        assert "TENSORBOARD_LOGGING_DIR" not in os.environ


def test_a_missing_tracker_package_is_a_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    missing = {"wandb", "tensorboard", "tensorboardX"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    with pytest.raises(MissingDependencyError, match="wandb") as ei:
        check_trackers(["wandb"])
    assert "judgelab[tracking]" in ei.value.hint
    with pytest.raises(MissingDependencyError, match="tensorboardX"):
        check_trackers(["tensorboard"])
    check_trackers([])


def test_report_to_reaches_the_trainer_config_and_is_checked():
    from judgelab.training.config import GRPOTrainSpec, SFTTrainSpec
    from judgelab.training.model_setup import common_trainer_kwargs

    spec = SFTTrainSpec(report_to=["tensorboard", "wandb"])
    assert common_trainer_kwargs(spec, Path("/tmp/x"))["report_to"] == ["tensorboard", "wandb"]
    assert common_trainer_kwargs(GRPOTrainSpec(), Path("/tmp/x"))["report_to"] == "none"
    with pytest.raises(ValueError):
        SFTTrainSpec(report_to=["mlflow"])


def test_progress_bar_counts_steps_and_shows_the_last_numbers():
    from judgelab.training.progress import make_progress_callback

    out = io.StringIO()
    cb = make_progress_callback("train-policy", enabled=True, file=out)
    state = SimpleNamespace(max_steps=4, global_step=0, is_world_process_zero=True)
    cb.on_train_begin(None, state, None)
    for step in (1, 2):
        state.global_step = step
        cb.on_step_end(None, state, None)
    cb.on_log(None, state, None, logs={"loss": 0.5, "reward": 4.25, "judge/invalid_rate": 0.0, "x": "y"})
    cb.note("tracked step 2: gold 4.1")
    assert cb.bar.n == 2 and cb.bar.total == 4
    cb.on_train_end(None, state, None)
    text = out.getvalue()
    assert "train-policy" in text and "2/4" in text and "loss=0.5" in text and "reward=4.25" in text
    assert "tracked step 2: gold 4.1" in text
    # silent when not on a terminal (CI logs), and on other ranks
    quiet = io.StringIO()
    cb = make_progress_callback("x", file=quiet)
    cb.on_train_begin(None, state, None)
    cb.on_train_end(None, state, None)
    other = make_progress_callback("x", enabled=True, file=quiet)
    other.on_train_begin(None, SimpleNamespace(max_steps=4, global_step=0, is_world_process_zero=False), None)
    assert other.bar is None and quiet.getvalue() == ""
