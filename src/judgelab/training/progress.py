"""A progress bar for the trainers (L3): steps done / to do, time left, the last logged numbers.

transformers' own bar is switched off (``disable_tqdm``: its text would interleave with the run's
log lines and it knows nothing of judgelab's tracking); ``make_progress_callback`` puts one tqdm bar
in its place, on the main process only, updated at every optimizer step, its postfix holding the
latest of ``loss``, ``reward`` and the judge invalid rate from the trainer's log rows.
``note(text)`` adds a word from outside (e.g. "tracking step 10: gold 4.31"). By default the bar
shows on a terminal and stays silent when stderr is not one (CI logs); ``enabled=True`` forces it.

transformers / tqdm are imported when the callback is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import IO, Any

POSTFIX_KEYS: tuple[tuple[str, str], ...] = (
    ("loss", "loss"),
    ("reward", "reward"),
    ("judge/invalid_rate", "invalid"),
    ("judge_reward/invalid_rate", "invalid"),
)


def postfix_of(logs: Mapping[str, Any]) -> dict[str, str]:
    """The short ``name=value`` pairs the bar shows for a trainer log row."""
    out: dict[str, str] = {}
    for key, label in POSTFIX_KEYS:
        v = logs.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[label] = f"{v:.3g}"
    return out


def make_progress_callback(description: str, *, enabled: bool | None = None, file: IO[str] | None = None) -> Any:
    """A ``transformers.TrainerCallback`` showing a step bar (``enabled=None``: only on a terminal)."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.bar: Any = None
            self.postfix: dict[str, str] = {}

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            self.bar = tqdm(total=state.max_steps or None, initial=state.global_step, desc=description,
                            unit="step", disable=None if enabled is None else not enabled, file=file,
                            dynamic_ncols=True)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None and state.global_step > self.bar.n:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if self.bar is not None and logs:
                self.postfix.update(postfix_of(logs))
                self.bar.set_postfix(self.postfix, refresh=True)

        def note(self, text: str) -> None:
            if self.bar is not None:
                self.postfix["last"] = text
                self.bar.set_postfix(self.postfix, refresh=True)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return ProgressCallback()


__all__ = ["make_progress_callback", "postfix_of"]
