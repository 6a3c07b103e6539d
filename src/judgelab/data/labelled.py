"""Gold-labelled judge items (L1): what ``train-judge`` trains on and ``eval-judge`` scores against.

One reader for the two files that carry gold labels:

- ``annotate`` output (``judgelab.annotation/v1`` rows of ``judgements.jsonl``): the gold's verdict
  (``score`` / ``winner``), its reasoning trace(s) and its identity (name, ``reasoning_effort``).
  For a pairwise battle judged in both orders, the second order's own trace is kept, so a
  reasoning judge can be distilled on the gold's real trace in each order. Invalid annotations
  (``invalid: true``) are skipped and counted — never turned into a label;
- labelled records (``judgelab.record/v1``, e.g. ``judgelab data build`` output or the AlpacaEval
  source): ``labels.score`` / ``labels.preference`` and ``labels.reasoning``.

Every item is either pointwise (one response, ``score``) or pairwise (two responses, ``choice`` =
the gold's choice with the responses in the given order: ``"A"``, ``"B"`` or ``"tie"``; a battle
whose two gold orders disagree is a ``"tie"``). Rows without a usable label are skipped with a
reason (``LabelledItems.skipped``); a malformed row is a ``DataError`` naming file and line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from judgelab.data.records import record_from_json
from judgelab.errors import DataError
from judgelab.store.jsonl import iter_jsonl_numbered

ANNOTATION_SCHEMA = "judgelab.annotation/v1"  # written by judgelab.stages.annotate
LabelProtocol = Literal["pointwise", "pairwise"]


@dataclass(frozen=True)
class LabelledItem:
    """One gold-labelled item (see the module docstring).

    ``reasoning``: the gold's trace for the given order; ``reasoning_swapped``: its trace for the
    swapped order (B, A), when the gold judged it; ``effort``: the gold's ``reasoning_effort``
    when the annotation records it; ``meta`` holds the row's ``meta`` (rubrics live there).
    """

    id: str
    protocol: LabelProtocol
    instruction: str
    responses: tuple[str, ...]
    score: int | None = None
    choice: str | None = None
    reasoning: str | None = None
    reasoning_swapped: str | None = None
    annotator: str | None = None
    effort: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> int | str:
        """The gold verdict: the score (pointwise) or the choice (pairwise)."""
        value = self.score if self.protocol == "pointwise" else self.choice
        assert value is not None  # guaranteed by the reader
        return value

    def rubric(self, key: str) -> str | None:
        value = self.meta.get(key)
        return value if isinstance(value, str) and value.strip() else None


@dataclass
class LabelledItems:
    """Items of one file, the skip counts by reason, and where they came from."""

    path: Path
    items: list[LabelledItem]
    skipped: Counter[str] = field(default_factory=Counter)
    kind: Literal["annotations", "records", "empty"] = "empty"

    @property
    def protocol(self) -> LabelProtocol | None:
        return self.items[0].protocol if self.items else None

    def by_id(self) -> dict[str, LabelledItem]:
        return {it.id: it for it in self.items}


def _effort(annotation: Mapping[str, Any]) -> str | None:
    sampling = (annotation.get("judge") or {}).get("sampling") or {}
    effort = sampling.get("reasoning_effort")
    return effort if isinstance(effort, str) else None


def _from_annotation(row: Mapping[str, Any], where: str) -> LabelledItem | str:
    """A labelled item, or the reason the row has no usable label."""
    for key in ("id", "prompt", "responses", "protocol"):
        if key not in row:
            raise DataError(f"{where}: annotation row has no '{key}'", "is this an annotate judgements.jsonl?")
    protocol = row["protocol"]
    if protocol not in ("pointwise", "pairwise"):
        return f"{protocol}_annotation"
    if row.get("invalid"):
        return "gold_invalid"
    responses = tuple(row["responses"])
    judge = row.get("judge") or {}
    common: dict[str, Any] = {
        "id": str(row["id"]),
        "instruction": row["prompt"],
        "responses": responses,
        "annotator": judge.get("name") or judge.get("judge_id"),
        "effort": _effort(row),
        "meta": row.get("meta") or {},
    }
    if protocol == "pointwise":
        if len(responses) != 1 or not isinstance(row.get("score"), int):
            raise DataError(f"{where}: pointwise annotation needs one response and an integer 'score'")
        return LabelledItem(protocol="pointwise", score=row["score"], reasoning=row.get("reasoning"), **common)
    if len(responses) != 2 or row.get("winner") not in ("A", "B", "tie"):
        raise DataError(f"{where}: pairwise annotation needs two responses and a 'winner' of A, B or tie")
    first = row.get("first") or {}
    second = row.get("second") or {}
    return LabelledItem(
        protocol="pairwise",
        choice=row["winner"],
        reasoning=first.get("reasoning"),
        reasoning_swapped=second.get("reasoning"),
        **common,
    )


def _from_record(obj: dict[str, Any], where: str) -> LabelledItem | str:
    rec = record_from_json(obj, where)
    lab = rec.labels
    if lab is None or (lab.score is None and lab.preference is None):
        return "no_label"
    common: dict[str, Any] = {
        "id": rec.id,
        "instruction": rec.prompt,
        "responses": tuple(rec.responses),
        "reasoning": lab.reasoning,
        "annotator": lab.annotator,
        "meta": rec.meta,
    }
    if lab.score is not None:
        return LabelledItem(protocol="pointwise", score=lab.score, **common)
    return LabelledItem(protocol="pairwise", choice=lab.preference, **common)


def load_labelled_items(path: str | Path, *, limit: int | None = None) -> LabelledItems:
    """Gold-labelled items of an annotate ``judgements.jsonl`` or a labelled-record JSONL.

    All rows must be of one kind (annotations or records) and one protocol; ids must be unique.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found", "point data: at an annotate judgements.jsonl or a records JSONL")
    out = LabelledItems(path=path, items=[])
    seen: dict[str, str] = {}
    for lineno, obj in iter_jsonl_numbered(path, allow_torn_tail=False):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object")
        kind: Literal["annotations", "records"] = (
            "annotations" if obj.get("schema") == ANNOTATION_SCHEMA else "records"
        )
        if out.kind == "empty":
            out.kind = kind
        elif out.kind != kind:
            raise DataError(
                f"{where}: a {kind[:-1]} row in a file of {out.kind}",
                "keep annotate output and labelled records in separate files",
            )
        item = _from_annotation(obj, where) if kind == "annotations" else _from_record(obj, where)
        if isinstance(item, str):
            out.skipped[item] += 1
            continue
        if out.items and item.protocol != out.items[0].protocol:
            raise DataError(
                f"{where}: a {item.protocol} item in a file of {out.items[0].protocol} items",
                "one file holds one protocol",
            )
        if item.id in seen:
            raise DataError(f"{where}: duplicate id {item.id!r} (first at {seen[item.id]})", "ids must be unique")
        seen[item.id] = where
        out.items.append(item)
        if limit is not None and len(out.items) >= limit:
            break
    return out


def filter_by_reference(
    items: Iterable[LabelledItem], reference: Iterable[LabelledItem]
) -> tuple[list[LabelledItem], Counter[str]]:
    """Keep the items whose gold verdict equals the reference verdict for the same id.

    Used for reasoning-effort variants: traces of a lower effort are kept only where that
    effort's verdict matches the high-effort gold. Returns the kept items and drop counts
    (``not_in_reference``, ``verdict_differs``).
    """
    ref = {it.id: it.label for it in reference}
    kept: list[LabelledItem] = []
    dropped: Counter[str] = Counter()
    for it in items:
        if it.id not in ref:
            dropped["not_in_reference"] += 1
        elif ref[it.id] != it.label:
            dropped["verdict_differs"] += 1
        else:
            kept.append(it)
    return kept, dropped


__all__ = [
    "ANNOTATION_SCHEMA",
    "LabelProtocol",
    "LabelledItem",
    "LabelledItems",
    "filter_by_reference",
    "load_labelled_items",
]
