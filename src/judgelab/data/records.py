"""The internal record format (L1): one prompt, 0–2 responses, optional labels, provenance.

Every dataset source (Tulu 3 preference mixture, AlpacaEval annotations, Arena-Hard files, any
JSONL/Parquet with a column mapping, the synthetic world) is turned into ``Record`` objects, and
every split file is a JSONL of them. A record is one of three shapes:

- a *prompt*: ``responses == []`` (policy prompts, unlabelled instructions);
- a *pointwise* item: one response, optionally ``labels.score`` (+ ``labels.reasoning``);
- a *pairwise* item: two responses (A, B), optionally ``labels.preference`` (+ reasoning).

``labels.annotator`` says who produced a label (``rules:easy``, ``alpaca_eval_cot_gpt4_turbo_fn``,
``tulu3-mixture`` ...), so a dataset's own preference is never mistaken for the study's gold.

Prompts are compared by ``prompt_hash``: the sha256 of the NFKC-normalised, case-folded text with
punctuation and whitespace runs collapsed, so trivially different copies of one prompt count as
the same prompt when splits are made disjoint.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from judgelab.errors import DataError
from judgelab.store.jsonl import iter_jsonl_numbered, write_jsonl_atomic

RECORD_SCHEMA = "judgelab.record/v1"

Preference = Literal["A", "B", "tie"]


class Labels(BaseModel):
    """Labels for a record's responses. ``score`` needs one response, ``preference`` two."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: int | None = None
    preference: Preference | None = None
    reasoning: str | None = None
    annotator: str | None = None


class Record(BaseModel):
    """One prompt with 0–2 responses and optional labels (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["judgelab.record/v1"] = Field(RECORD_SCHEMA, alias="schema")
    id: str = Field(..., min_length=1)
    prompt: str = Field(..., min_length=1)
    responses: list[str] = Field(default_factory=list, max_length=2)
    labels: Labels | None = None
    source: str = Field(..., min_length=1)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _labels_match_responses(self) -> Record:
        if not self.prompt.strip():
            raise ValueError("prompt is blank")
        lab = self.labels
        if lab is not None:
            if lab.score is not None and len(self.responses) != 1:
                raise ValueError(
                    f"labels.score needs exactly one response, the record has {len(self.responses)}"
                )
            if lab.preference is not None and len(self.responses) != 2:
                raise ValueError(
                    f"labels.preference needs exactly two responses, the record has {len(self.responses)}"
                )
        return self

    @property
    def prompt_hash(self) -> str:
        return prompt_hash(self.prompt)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to JSONL (``schema`` first)."""
        return self.model_dump(mode="json", by_alias=True)


def normalize_prompt(text: str) -> str:
    """NFKC, case-fold, punctuation and whitespace runs → one space, stripped."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = re.sub(r"[\W_]+", " ", t)
    return t.strip()


def prompt_hash(text: str) -> str:
    """sha256 hex of ``normalize_prompt(text)``: equal for prompts that differ only trivially."""
    return hashlib.sha256(normalize_prompt(text).encode("utf-8")).hexdigest()


def stable_id(prefix: str, *parts: str, length: int = 16) -> str:
    """A deterministic id ``prefix-<sha256 of parts>``."""
    h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:length]
    return f"{prefix}-{h}"


def validation_error_to_data_error(
    err: ValidationError, where: str, hint: str | None = None
) -> DataError:
    """One ``DataError`` naming the place (``file:line``) and each bad column with the reason."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(record)"
        if e["type"] == "extra_forbidden":
            parts.append(f"column '{loc}': unknown column")
        elif e["type"] == "missing":
            parts.append(f"column '{loc}': missing")
        else:
            parts.append(f"column '{loc}': {e['msg']}")
    return DataError(
        f"{where}: invalid record: " + "; ".join(parts),
        hint or "each line must be a judgelab record (id, prompt, responses, labels, source, meta)",
    )


def record_from_json(obj: dict[str, Any], where: str) -> Record:
    """Validate one JSON object as a ``Record``; ``DataError`` naming ``where`` and the column."""
    try:
        return Record.model_validate(obj)
    except ValidationError as e:
        raise validation_error_to_data_error(e, where) from e


def iter_records(path: str | Path) -> Iterator[Record]:
    """Records of a JSONL file, validated; a bad line is a ``DataError`` naming file, line, column."""
    path = Path(path)
    for lineno, obj in iter_jsonl_numbered(path, allow_torn_tail=False):
        yield record_from_json(obj, f"{path}:{lineno}")


def load_records(path: str | Path) -> list[Record]:
    """All records of a JSONL file (see ``iter_records``)."""
    return list(iter_records(path))


def save_records(path: str | Path, records: Iterable[Record]) -> int:
    """Write records atomically as JSONL; returns the number written."""
    return write_jsonl_atomic(path, (r.to_json() for r in records))


__all__ = [
    "RECORD_SCHEMA",
    "Labels",
    "Preference",
    "Record",
    "iter_records",
    "load_records",
    "normalize_prompt",
    "prompt_hash",
    "record_from_json",
    "save_records",
    "stable_id",
    "validation_error_to_data_error",
]
