"""Judge-training examples (L3): gold-labelled items → the judge's own prompt + a target.

The prompt is rendered by the *same* ``judgelab.judges`` template (and mode) the trained judge is
later used with, so training and use see identical text (system rules, nonce-tagged inputs).

Targets, by recipe:

- ``verdict`` (``sft``): the verdict line only — ``Score: N`` or ``Verdict: [[A]]``;
- ``trace`` (``distill``): the gold's reasoning trace, then the verdict line, in the judge model's
  thinking format: ``<think>\\n{trace}\\n</think>\\n\\n{verdict}`` for chat templates that write
  think blocks (Qwen3-style), else ``{trace}\\n\\n{verdict}`` — how ``Judge`` reads a reasoning
  judge without a reasoning channel (reasoning = the text before the last verdict line).

Pairwise items give one example per order (``ab`` as labelled, and ``ba`` with A and B swapped and
the gold choice swapped) so a judge cannot learn a position prior. The trace for ``ba`` is the
gold's own second-order trace when the annotation has one; otherwise the given trace with
"Response A" and "Response B" exchanged (``swap_response_names``). Gold ties are skipped: the
pairwise template has no tie verdict.

GRPO rows carry the gold verdict in the example's own order (``gold_score`` / ``gold_choice``) and
a ``pair_id``; the verdict parsers for the rewards read the completion with the judges' parser.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from judgelab.backends.reasoning import split_reasoning
from judgelab.data.labelled import LabelledItem
from judgelab.errors import DataError
from judgelab.judges.parsing import parse_verdict
from judgelab.judges.templates import JudgeTemplate
from judgelab.judges.types import swap_choice
from judgelab.types import ChatMessage

Target = Literal["verdict", "trace"]
Orders = Literal["given", "both"]
ThinkFormat = Literal["think_tags", "plain"]
Order = Literal["single", "ab", "ba"]

_RESPONSE_NAME = re.compile(
    r"\b(Responses?|responses?|Outputs?|outputs?|Assistants?|assistants?)(\s+)([AB])"
    r"(?:(\s+(?:and|or|&|vs\.?|versus)\s+)([AB]))?\b"
)


@dataclass(frozen=True)
class JudgeExample:
    """One training example: the judge prompt, its target, the gold verdict in this order."""

    id: str
    order: Order
    messages: list[ChatMessage]
    target: str
    gold: int | str
    trace: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def verdict_line(protocol: str, gold: int | str) -> str:
    """The verdict line the judges' parser reads: ``Score: N`` or ``Verdict: [[X]]``."""
    return f"Score: {gold}" if protocol == "pointwise" else f"Verdict: [[{gold}]]"


def format_target(verdict: str, trace: str | None, think: ThinkFormat) -> str:
    """The assistant completion: the verdict, preceded by the trace (see the module docstring)."""
    if trace is None:
        return verdict
    trace = trace.strip()
    if think == "think_tags":
        return f"<think>\n{trace}\n</think>\n\n{verdict}"
    return f"{trace}\n\n{verdict}"


def swap_response_names(text: str) -> str:
    """Exchange "Response A" and "Response B" (also responses/output/assistant A/B) in a trace."""

    def sub(m: re.Match[str]) -> str:  # the letters swap like verdicts do (judges.types.swap_choice)
        out = f"{m.group(1)}{m.group(2)}{swap_choice(m.group(3))}"
        if m.group(5):  # "Responses A and B"
            out += f"{m.group(4)}{swap_choice(m.group(5))}"
        return out

    return _RESPONSE_NAME.sub(sub, text)


def _clean_trace(trace: str | None) -> str | None:
    """The trace text without think tags of its own (a trace is re-wrapped in the judge's format)."""
    if trace is None:
        return None
    text = trace.replace("<think>", "").replace("</think>", "").strip()
    return text or None


def build_judge_examples(
    items: Sequence[LabelledItem],
    template: JudgeTemplate,
    *,
    target: Target,
    think: ThinkFormat = "plain",
    orders: Orders = "both",
    score_min: int = 0,
    score_max: int = 9,
    rubric_key: str = "rubric",
) -> tuple[list[JudgeExample], Counter[str]]:
    """Examples for ``items`` with ``template`` (see the module docstring); skips are counted."""
    skipped: Counter[str] = Counter()
    out: list[JudgeExample] = []
    needs_rubric = "rubric" in template.blocks
    for it in items:
        if it.protocol != _protocol_family(template):
            raise DataError(
                f"item {it.id!r} is {it.protocol} but template {template.key} is {template.protocol}",
                "pick a template of the data's protocol (pointwise-v1 / pairwise-v1)",
            )
        rubric = it.rubric(rubric_key) if needs_rubric else None
        if needs_rubric and rubric is None:
            skipped["no_rubric"] += 1
            continue
        if it.protocol == "pointwise":
            if it.score is None or not score_min <= it.score <= score_max:
                raise DataError(
                    f"item {it.id!r}: gold score {it.score} outside {score_min}..{score_max}",
                    "set score_min / score_max to the gold's scale",
                )
            views: list[tuple[Order, dict[str, str], int | str, str | None]] = [
                ("single", {"instruction": it.instruction, "response": it.responses[0]}, it.score, it.reasoning)
            ]
        else:
            if it.choice == "tie":
                skipped["gold_tie"] += 1
                continue
            a, b = it.responses
            views = [("ab", {"instruction": it.instruction, "response_a": a, "response_b": b},
                      it.label, it.reasoning)]
            if orders == "both":
                swapped = it.reasoning_swapped
                if swapped is None and it.reasoning is not None:
                    swapped = swap_response_names(it.reasoning)
                views.append(("ba", {"instruction": it.instruction, "response_a": b, "response_b": a},
                              swap_choice(str(it.label)), swapped))
        for order, inputs, gold, trace in views:
            if rubric is not None:
                inputs["rubric"] = rubric
            trace = _clean_trace(trace) if target == "trace" else None
            if target == "trace" and trace is None:
                skipped["no_trace"] += 1
                continue
            messages = template.render(inputs, score_min=score_min, score_max=score_max)
            out.append(
                JudgeExample(
                    id=it.id,
                    order=order,
                    messages=messages,
                    target=format_target(verdict_line(it.protocol, gold), trace, think),
                    gold=gold,
                    trace=trace,
                )
            )
    return out, skipped


def _protocol_family(template: JudgeTemplate) -> str:
    if template.protocol not in ("pointwise", "pairwise"):
        raise DataError(
            f"template {template.key} is {template.protocol}; judges are trained on pointwise or "
            "pairwise templates",
            "use pointwise-v1, pointwise-rubric-v1 or pairwise-v1",
        )
    return template.protocol


def grpo_rows(examples: Sequence[JudgeExample], protocol: str) -> list[dict[str, Any]]:
    """TRL GRPO prompt rows: ``prompt`` + the gold verdict in the row's order (+ ``pair_id``)."""
    key = "gold_score" if protocol == "pointwise" else "gold_choice"
    return [{"prompt": list(ex.messages), key: ex.gold, "pair_id": ex.id} for ex in examples]


def make_verdict_parser(
    protocol: str, score_min: int = 0, score_max: int = 9
) -> Callable[[str, str | None], Any]:
    """(completion text, finish reason) → the verdict (score or choice) or None, as ``Judge`` reads
    it: think blocks removed, last verdict line of the answer, strict grammar, and a completion cut
    off by the token limit (``finish_reason == "length"``) valid only if its verdict line ends it."""

    def parse(text: str, finish_reason: str | None = None) -> Any:
        answer, _ = split_reasoning(text)
        pr = parse_verdict(answer, protocol, score_min=score_min, score_max=score_max,  # type: ignore[arg-type]
                           finish_reason=finish_reason)
        if not pr.verdict.parsed:
            return None
        return pr.verdict.score if protocol == "pointwise" else pr.verdict.choice

    parse.__name__ = f"parse_{protocol}"
    return parse


def filter_by_length(
    examples: Sequence[JudgeExample],
    lengths: Sequence[int],
    max_tokens: int | None,
) -> tuple[list[JudgeExample], int]:
    """Drop the examples whose token length exceeds ``max_tokens`` (None = keep all)."""
    if max_tokens is None:
        return list(examples), 0
    kept = [ex for ex, n in zip(examples, lengths, strict=True) if n <= max_tokens]
    return kept, len(examples) - len(kept)


def label_counts(examples: Sequence[JudgeExample]) -> dict[str, int]:
    """How often each gold verdict occurs among the examples (for the manifest)."""
    return dict(sorted(Counter(str(ex.gold) for ex in examples).items()))


def chat_template_kwargs_for(think: ThinkFormat, mode: str) -> Mapping[str, Any]:
    """``enable_thinking`` for think-tag templates (on for reasoning judges, off otherwise)."""
    return {"enable_thinking": mode == "reasoning"} if think == "think_tags" else {}


__all__ = [
    "JudgeExample",
    "Orders",
    "Target",
    "ThinkFormat",
    "build_judge_examples",
    "chat_template_kwargs_for",
    "filter_by_length",
    "format_target",
    "grpo_rows",
    "label_counts",
    "make_verdict_parser",
    "swap_response_names",
    "verdict_line",
]
