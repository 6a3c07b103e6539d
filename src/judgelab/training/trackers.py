"""Experiment trackers for the trainers (L3): TensorBoard and W&B, offline-capable.

``TrainSpec.report_to: [tensorboard, wandb]`` turns on transformers' own integrations for the
trainer's log rows — loss, learning rate, TRL's GRPO metrics, and the metrics judgelab's rewards log
through TRL's ``log_metric`` (``judge/invalid_rate``, ``judge/readout_failure_rate``,
``reward/invalid_rate``, ``judge_reward/*``). ``tracker_session`` sets where they write, for the
duration of one training:

- TensorBoard: event files under ``OUT/tensorboard`` (``TENSORBOARD_LOGGING_DIR``, unless the
  environment sets it); the writer is ``torch.utils.tensorboard`` when the ``tensorboard`` package is
  installed, else ``tensorboardX`` (what the ``tracking`` extra installs: no TensorFlow stack);
- W&B: offline in ``OUT/wandb`` unless ``WANDB_MODE`` / ``WANDB_DIR`` are set (sync later with
  ``wandb sync OUT/wandb/offline-run-*``), project ``judgelab`` unless ``WANDB_PROJECT`` is set; the
  run is finished when training ends, so the next training in the same process (a study's next
  policy) gets its own run instead of writing into this one.

judgelab's held-out tracking (``tracking.jsonl``: ``reward/proxy``, ``reward/gold``,
``reward/gold@proxy_prompts``, their SEs, ``kl/policy_init``, ``judge/invalid_rate``, ...) is not a
trainer log row: ``TrackerSink.publish(step, metrics)`` writes it into the same trackers as
``tracking/<metric>`` at the training step — the run's TensorBoard log dir and the active W&B run.

torch / tensorboardX / wandb are imported when used.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from judgelab.errors import MissingDependencyError

logger = logging.getLogger(__name__)

TENSORBOARD_DIRNAME = "tensorboard"
TRACKING_PREFIX = "tracking/"


def tensorboard_dir(output_dir: str | Path) -> Path:
    """Where a training's TensorBoard events go (``TENSORBOARD_LOGGING_DIR`` wins when set)."""
    env = os.environ.get("TENSORBOARD_LOGGING_DIR")
    return Path(env).expanduser() if env else Path(output_dir) / TENSORBOARD_DIRNAME


def check_trackers(report_to: Sequence[str]) -> None:
    """``MissingDependencyError`` when a requested tracker's package is not installed."""
    have = importlib.util.find_spec
    if "tensorboard" in report_to and have("tensorboard") is None and have("tensorboardX") is None:
        raise MissingDependencyError("tensorboardX", extra="tracking", feature="report_to: tensorboard")
    if "wandb" in report_to and have("wandb") is None:
        raise MissingDependencyError("wandb", extra="tracking", feature="report_to: wandb")


@contextlib.contextmanager
def tracker_session(report_to: Sequence[str], output_dir: str | Path) -> Iterator[None]:
    """The environment transformers' tracker callbacks read, for one training (module docstring)."""
    if not report_to:
        yield
        return
    check_trackers(report_to)
    out = Path(output_dir)
    env: dict[str, str] = {}
    if "tensorboard" in report_to:
        env["TENSORBOARD_LOGGING_DIR"] = str(tensorboard_dir(out))
    if "wandb" in report_to:
        env["WANDB_MODE"] = os.environ.get("WANDB_MODE") or "offline"
        env["WANDB_DIR"] = os.environ.get("WANDB_DIR") or str(out)
        env["WANDB_PROJECT"] = os.environ.get("WANDB_PROJECT") or "judgelab"
        Path(env["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        if "wandb" in report_to:
            finish_wandb_run()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def finish_wandb_run() -> None:
    """Finish the active W&B run, if any (quietly: the training's own result is what matters)."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


def _summary_writer(log_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from tensorboardX import SummaryWriter
    return SummaryWriter(log_dir=str(log_dir))


class TrackerSink:
    """Writes judgelab's own metrics into the trainer's trackers (see the module docstring).

    Build it inside the ``tracker_session`` of the training it belongs to (``train_grpo`` /
    ``train_sft`` open the session; the stage's tracking function calls ``publish`` during
    training). Values that are None / NaN / not numbers are left out.
    """

    def __init__(self, report_to: Sequence[str], output_dir: str | Path) -> None:
        self.report_to = tuple(report_to)
        self.output_dir = Path(output_dir)
        self._tb: Any = None

    def publish(self, step: int, metrics: Mapping[str, Any], *, prefix: str = TRACKING_PREFIX) -> dict[str, float]:
        """Log ``metrics`` at training step ``step``; returns what was logged (name → value)."""
        values = {
            f"{prefix}{k}": float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }
        if not values or not self.report_to:
            return values
        if "tensorboard" in self.report_to:
            if self._tb is None:
                self._tb = _summary_writer(tensorboard_dir(self.output_dir))
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if "wandb" in self.report_to:
            import wandb

            if wandb.run is None:
                logger.warning("report_to wandb: no active W&B run at step %d; tracking metrics not logged", step)
            else:
                wandb.run.log({**values, "train/global_step": step})
        return values

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


__all__ = [
    "TENSORBOARD_DIRNAME",
    "TRACKING_PREFIX",
    "TrackerSink",
    "check_trackers",
    "finish_wandb_run",
    "tensorboard_dir",
    "tracker_session",
]
