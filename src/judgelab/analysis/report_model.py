"""The report's data model (L3): sections (tables, figures, samples, text) and number formatting.

Shared by the builder (``analysis.report``), its figures (``analysis.report_figures``) and the
writers (``analysis.report_render``), and by any module that adds a section of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLES_TITLE = "Sample outputs"

# sections


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    text_cols: tuple[int, ...] = (0,)  # left-aligned columns; the others hold numbers


@dataclass
class Figure:
    title: str
    filename: str
    png: bytes
    caption: str


@dataclass
class SampleCell:
    label: str
    step: int
    proxy: float | None
    gold: float | None
    response: str
    gold_reasoning: str | None


@dataclass
class SamplePrompt:
    prompt_id: str
    prompt: str
    cells: list[SampleCell]


@dataclass
class Samples:
    title: str
    prompts: list[SamplePrompt]
    note: str = ""


@dataclass
class Text:
    title: str | None
    text: str


Section = Table | Figure | Samples | Text


@dataclass
class Report:
    title: str
    subtitle: list[tuple[str, str]]
    sections: list[Section] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# formatting


def fmt(x: Any, nd: int = 2) -> str:
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return "–"
    return f"{x:.{nd}f}"


def fmt_ci(v: Any, ci: Any, nd: int = 2) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and fmt(ci[0]) != "–" and fmt(ci[1]) != "–":
        return f"{fmt(v, nd)} [{fmt(ci[0], nd)}, {fmt(ci[1], nd)}]"
    return fmt(v, nd)


def clip(text: Any, limit: int) -> str:
    s = "" if text is None else str(text)
    if len(s) <= limit:
        return s
    return s[:limit] + f" … [truncated: {len(s)} characters in the record]"


def jsonable(obj: Any) -> Any:
    """nan/inf → None, tuples → lists, recursively (report.json stays strict JSON)."""
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def num_or_none(v: Any) -> float | None:
    return float(v) if is_num(v) else None


def num_or_nan(v: Any) -> float:
    return float(v) if is_num(v) else math.nan


def rel_path(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
