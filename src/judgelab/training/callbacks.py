"""Trainer callbacks for policy GRPO: held-out tracking (samples + KL) and a JSONL log sink (L3).

``PolicyTrackingCallback`` samples the held-out prompts with the *current* policy, estimates the
KL to the initial policy on those samples (``judgelab.training.heldout``), and hands both to a
``track`` function that the stage passes in. ``training/`` never imports ``judges/`` or
``evaluation/``: scoring with the proxy and gold judges and writing records happen in that
function.

When it tracks (one tracking record per step, never twice):

- at the start of training, for the step training starts from (step 0 on a fresh run; on a
  resume, the checkpoint's step when it has no record yet — a crash between saving a checkpoint
  and tracking it);
- right after a checkpoint is saved (``on_save``) at a step that is a multiple of
  ``every_steps``, or at the last step; the stage makes ``save_steps`` divide ``every_steps``, so
  every tracked step beyond 0 has a checkpoint that ``eval-policy`` can re-score;
- at the end of training, for the final step when no checkpoint was saved there.

``done_steps`` (the steps already in ``tracking.jsonl``) is passed in, so a resumed run does not
re-track them. With several processes only the main process tracks; with DeepSpeed ZeRO-3 the
parameters are sharded, so turn in-training tracking off there and re-score the checkpoints with
``judgelab eval-policy`` instead (see docs/scaling.md).

Imports: transformers when a callback class is built (the ``make_*`` functions), torch when a
tracking step samples and measures the KL (inside ``judgelab.training.heldout``'s functions);
importing this module loads neither (``tests/unit/test_import_light.py``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from judgelab.training.heldout import (
    GeneratedSample,
    HeldOutPrompt,
    HeldOutSampling,
    KLStats,
    ReferencePolicy,
    generate_heldout,
    policy_kl,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackingBatch:
    """What the callback hands to ``track``: the step, the held-out samples and the KL."""

    step: int
    samples: list[GeneratedSample]
    kl: KLStats | None  # None when the KL is switched off
    generate_seconds: float
    kl_seconds: float

    @property
    def length_mean(self) -> float:
        if not self.samples:
            return math.nan
        return sum(s.n_tokens for s in self.samples) / len(self.samples)


TrackFn = Callable[[TrackingBatch], None]


@dataclass
class TrackingPlan:
    """When and what to track (see the module docstring)."""

    prompts: Sequence[HeldOutPrompt]
    sampling: HeldOutSampling
    every_steps: int
    done_steps: set[int] = field(default_factory=set)
    kl: bool = True
    chat_template_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def due(self, step: int, *, final: bool) -> bool:
        if step in self.done_steps:
            return False
        return step == 0 or step % self.every_steps == 0 or final


class PolicyTracker:
    """The callback's logic, independent of the Trainer (unit-testable with a stub model)."""

    def __init__(self, plan: TrackingPlan, track: TrackFn, reference: ReferencePolicy | None) -> None:
        if plan.kl and reference is None:
            raise ValueError("tracking with kl=True needs a ReferencePolicy")
        self.plan = plan
        self.track = track
        self.reference = reference

    def maybe_track(self, step: int, model: Any, tokenizer: Any, *, final: bool = False) -> bool:
        if not self.plan.due(step, final=final):
            return False
        self.track_now(step, model, tokenizer)
        return True

    def track_now(self, step: int, model: Any, tokenizer: Any) -> TrackingBatch:
        t0 = time.perf_counter()
        samples = generate_heldout(
            model, tokenizer, self.plan.prompts, self.plan.sampling,
            chat_template_kwargs=self.plan.chat_template_kwargs,
        )
        t1 = time.perf_counter()
        kl = None
        if self.plan.kl and self.reference is not None:
            kl = policy_kl(model, self.reference, samples, batch_size=self.plan.sampling.kl_batch_size)
        t2 = time.perf_counter()
        batch = TrackingBatch(step=step, samples=samples, kl=kl, generate_seconds=t1 - t0,
                              kl_seconds=t2 - t1)
        logger.info(
            "tracking step %d: %d samples (%.1f s), KL %s (%.1f s)", step, len(samples), t1 - t0,
            "off" if kl is None else f"{kl.per_token:.4g}/token", t2 - t1,
        )
        self.track(batch)
        self.plan.done_steps.add(step)
        return batch


def make_tracking_callback(tracker: PolicyTracker) -> Any:
    """A ``transformers.TrainerCallback`` that runs ``tracker`` (see the module docstring)."""
    from transformers import TrainerCallback

    class PolicyTrackingCallback(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.tracker = tracker

        def _tokenizer(self, kwargs: Mapping[str, Any]) -> Any:
            tok = kwargs.get("processing_class") or kwargs.get("tokenizer")
            return getattr(tok, "tokenizer", tok)  # a processor wraps its tokenizer

        def _run(self, state: Any, kwargs: Mapping[str, Any], *, final: bool) -> None:
            if not state.is_world_process_zero:
                return
            self.tracker.maybe_track(state.global_step, kwargs["model"], self._tokenizer(kwargs),
                                     final=final)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._run(state, kwargs, final=state.global_step >= state.max_steps)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._run(state, kwargs, final=state.global_step >= state.max_steps)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._run(state, kwargs, final=True)

    return PolicyTrackingCallback()


def make_log_callback(sink: Callable[[list[dict[str, Any]]], Any]) -> Any:
    """A ``TrainerCallback`` that passes each log row (``{"step", **logs}``) to ``sink`` as logged."""
    from transformers import TrainerCallback

    class JsonlLogCallback(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if state.is_world_process_zero and logs:
                sink([{"step": int(state.global_step), **_jsonable(logs)}])

    return JsonlLogCallback()


def _jsonable(logs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in logs.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None  # NaN/inf are not JSON
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif hasattr(v, "item"):
            x = v.item()
            out[k] = None if isinstance(x, float) and not math.isfinite(x) else x
        else:
            out[k] = str(v)
    return out


def steps_of(rows: Iterable[Mapping[str, Any]]) -> set[int]:
    """The ``step`` values of tracking records."""
    return {int(r["step"]) for r in rows if "step" in r}


__all__ = [
    "PolicyTracker",
    "TrackFn",
    "TrackingBatch",
    "TrackingPlan",
    "make_log_callback",
    "make_tracking_callback",
    "steps_of",
]
