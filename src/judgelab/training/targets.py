"""Training targets for judge recipes: verdict-only (``sft``) and trace + verdict (``distill``).

The ``distill`` target is written in the judge model's *own* thinking format, so that at use time
the judge's reasoning lands where ``judgelab.backends.reasoning.split_reasoning`` looks for it:

- ``think_tags`` (Qwen3-style chat templates, detected by ``<think>`` in the template):
  ``<think>\\n{trace}\\n</think>\\n\\n{verdict}``;
- ``plain`` (templates without a thinking format, e.g. SmolLM2): ``{trace}\\n{verdict}`` — the
  reasoning is the text before the verdict line, which the judge's parser reads last-match.

Reasoning-effort variants (``distill`` with ``trace_effort``): ``select_effort_consistent`` keeps
the items whose verdict at the chosen effort equals the high-effort verdict, and returns their
chosen-effort traces.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Literal

from judgelab.errors import DataError

ThinkingFormat = Literal["think_tags", "plain"]


def detect_thinking_format(chat_template: str | None) -> ThinkingFormat:
    """``think_tags`` if the tokenizer's chat template knows ``<think>`` blocks, else ``plain``."""
    return "think_tags" if chat_template and "<think>" in chat_template else "plain"


def verdict_target(verdict_line: str) -> str:
    """The ``sft`` target: the verdict line only (e.g. ``Score: 7`` or ``Verdict: [[A]]``)."""
    line = verdict_line.strip()
    if not line or "\n" in line:
        raise DataError(f"a verdict target must be one non-empty line, got {verdict_line!r}")
    return line


def distill_target(trace: str, verdict_line: str, fmt: ThinkingFormat) -> str:
    """The ``distill`` target: the gold's trace, then the verdict line, in ``fmt``."""
    trace = trace.strip()
    if not trace:
        raise DataError("empty gold trace", "distill needs the gold's reasoning; use the sft recipe without it")
    if "<think>" in trace or "</think>" in trace:
        raise DataError("the gold trace contains <think> tags", "pass the bare trace; the format adds them")
    verdict = verdict_target(verdict_line)
    if fmt == "think_tags":
        return f"<think>\n{trace}\n</think>\n\n{verdict}"
    return f"{trace}\n{verdict}"


@dataclass(frozen=True)
class GoldAtEffort:
    verdict: str | int | float
    trace: str


def select_effort_consistent(
    gold: Mapping[Hashable, Mapping[str, GoldAtEffort]], effort: str, reference: str = "high"
) -> dict[Hashable, GoldAtEffort]:
    """Items whose ``effort`` verdict equals their ``reference`` verdict, with the ``effort`` gold.

    ``gold[item_id][effort_name]`` holds the gold verdict and trace at that reasoning effort.
    Items missing either effort are a ``DataError`` (annotate both efforts first).
    """
    out: dict[Hashable, GoldAtEffort] = {}
    for item_id, by_effort in gold.items():
        if effort not in by_effort or reference not in by_effort:
            raise DataError(
                f"item {item_id!r}: gold at effort {effort!r} and {reference!r} needed, "
                f"have {sorted(by_effort)}",
                "annotate the training items at both reasoning efforts",
            )
        if by_effort[effort].verdict == by_effort[reference].verdict:
            out[item_id] = by_effort[effort]
    return out


__all__ = [
    "GoldAtEffort",
    "ThinkingFormat",
    "detect_thinking_format",
    "distill_target",
    "select_effort_consistent",
    "verdict_target",
]
