"""Judge snapshots at training-time marks (L3): the model saved after N minutes of training.

``train-judge`` with ``snapshot_minutes: [5, 10, 20, 40]`` writes, next to ``final/``, one folder
per mark (``RUN_DIR/snapshots/<m>min/final``, an ordinary HF folder) as soon as the run has
trained that long — one run gives the α-vs-CPU-minutes curve of a recipe instead of one run per
budget. Minutes count training only: the frozen-trunk path's step time (its cache pass and saves
excluded; carried across a resume), or the TRL trainer's wall time since training began in this
process, minus the time spent saving snapshots. A mark the run never reaches gives no folder; a
folder that exists is never rewritten.

torch / transformers / peft are imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgelab.training.model_setup import FINAL_DIRNAME

logger = logging.getLogger(__name__)

SNAPSHOT_DIRNAME = "snapshots"


def snapshot_dir(run_dir: Path, minutes: float) -> Path:
    """``RUN_DIR/snapshots/<m>min`` (``5min``, ``2.5min``)."""
    return Path(run_dir) / SNAPSHOT_DIRNAME / f"{minutes:g}min"


@dataclass
class SnapshotMarks:
    """The marks of one run and what to do after a snapshot is written (e.g. write its judge.yaml)."""

    run_dir: Path
    minutes: Sequence[float]
    on_saved: Callable[[Path, float, int, float], None] | None = None  # (snapshot dir, mark, step, seconds)
    stop_after_last: bool = False  # end training once the last mark is taken
    taken: list[float] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.stop_after_last and len(self.taken) == len(set(self.minutes))

    def due(self, seconds: float) -> list[float]:
        out = []
        for m in sorted(self.minutes):
            if m * 60.0 <= seconds and m not in self.taken:
                self.taken.append(m)
                if not (snapshot_dir(self.run_dir, m) / FINAL_DIRNAME).is_dir():
                    out.append(m)
        return out

    def saved(self, mark: float, step: int, seconds: float) -> None:
        logger.info("snapshot after %g training minutes (step %d, %.0f s): %s", mark, step, seconds,
                    snapshot_dir(self.run_dir, mark))
        if self.on_saved is not None:
            self.on_saved(snapshot_dir(self.run_dir, mark), mark, step, seconds)


def trunk_snapshot_callback(marks: SnapshotMarks) -> Callable[[Any], None]:
    """A step callback for ``train_frozen_trunk`` (its ``TrunkState``)."""

    def on_step(state: Any) -> None:
        for m in marks.due(state.train_seconds):
            state.save_model(snapshot_dir(marks.run_dir, m) / FINAL_DIRNAME)
            marks.saved(m, state.step, state.train_seconds)
        if marks.finished:
            state.stop = True

    return on_step


def trl_snapshot_callback(marks: SnapshotMarks, tokenizer: Any) -> Any:
    """A transformers ``TrainerCallback`` taking the snapshots of a TRL run (LoRA merged in a copy)."""
    from transformers import TrainerCallback

    class SnapshotCallback(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.start: float | None = None
            self.excluded = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.start = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            if self.start is None or model is None or not args.should_save:
                return
            seconds = time.monotonic() - self.start - self.excluded
            for m in marks.due(seconds):
                t0 = time.monotonic()
                _save_trl_model(model, tokenizer, snapshot_dir(marks.run_dir, m) / FINAL_DIRNAME)
                self.excluded += time.monotonic() - t0
                marks.saved(m, int(state.global_step), seconds)
            if marks.finished:
                control.should_training_stop = True

    return SnapshotCallback()


def _save_trl_model(model: Any, tokenizer: Any, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if hasattr(model, "merge_and_unload"):  # peft: merge a copy, the run keeps training the adapter
        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    tmp.rename(path)


__all__ = ["SNAPSHOT_DIRNAME", "SnapshotMarks", "snapshot_dir", "trl_snapshot_callback", "trunk_snapshot_callback"]
