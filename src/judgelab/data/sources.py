"""Dataset sources (L1): every input format becomes ``Record``s.

Source configs (discriminated by ``kind``):

- ``tulu_preference``: the Tulu 3 preference mixture the paper drew prompts from
  (``allenai/llama-3.1-tulu-3-8b-preference-mixture`` through ``datasets``, or the same columns
  — ``id``, ``prompt``, ``chosen``, ``rejected``, ``source`` — from a local Parquet/JSONL file or
  folder). Rows are kept when their ``source`` column matches ``source_include`` (default: the
  off-policy subset, as in the paper) and none of ``source_exclude``.
- ``alpacaeval``: AlpacaEval annotation files (``instruction``, ``output_1``, ``output_2``,
  ``preference``, ``explanation``...): gold pairwise labels with the judge's written reasoning.
- ``arena_hard``: Arena-Hard-Auto question files (v2: ``uid``/``prompt``; v0.1: ``question_id``/
  ``turns``), optionally with one model-answer file attached as each question's response.
- ``table``: any JSONL/JSON/Parquet file with a column mapping.
- ``synthetic``: the synthetic world (``judgelab.data.world``); generated, not read — see
  ``stages/data_build.py``.

A bad or missing column is a ``DataError`` naming the file, the line (JSONL) or row (Parquet,
0-based) and the column. Nothing here imports ``datasets`` or ``pyarrow`` until it is used.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from judgelab.config.specs import StrictModel
from judgelab.data.records import Labels, Record, stable_id
from judgelab.data.world.generate import WorldConfig
from judgelab.errors import DataError, MissingDependencyError
from judgelab.store.jsonl import iter_jsonl_numbered

log = logging.getLogger(__name__)

TULU_HF_ID = "allenai/llama-3.1-tulu-3-8b-preference-mixture"
TableFormat = Literal["auto", "jsonl", "json", "parquet"]
_EXTS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}


# ============================================================================ configs
class TuluPreferenceSourceConfig(StrictModel):
    kind: Literal["tulu_preference"] = "tulu_preference"
    hf_id: str = Field(TULU_HF_ID, description="dataset id for datasets.load_dataset (or a local dataset folder)")
    hf_split: str = "train"
    revision: str | None = None
    path: str | None = Field(None, description="local Parquet/JSONL file or folder with the same columns; wins over hf_id")
    source_include: list[str] = Field(
        default_factory=lambda: [r"off[-_ ]?policy"],
        description="regexes (case-insensitive) on the 'source' column; a row is kept if one matches; [] keeps all",
    )
    source_exclude: list[str] = Field(default_factory=list)
    keep_responses: bool = Field(True, description="keep chosen/rejected as responses A/B with their preference")
    response_order: Literal["random", "chosen_first"] = "random"
    single_turn_only: bool = True
    limit: int | None = Field(None, ge=1, description="stop after this many kept rows")

    @field_validator("source_include", "source_exclude")
    @classmethod
    def _valid_regexes(cls, v: list[str]) -> list[str]:
        for rx in v:
            try:
                re.compile(rx)
            except re.error as e:
                raise ValueError(f"bad regex {rx!r}: {e}") from e
        return v


class AlpacaEvalSourceConfig(StrictModel):
    kind: Literal["alpacaeval"] = "alpacaeval"
    paths: list[str] = Field(..., min_length=1, description="annotation files (.json/.jsonl) or folders of them")
    include_ties: bool = True
    relabel_explanations: bool = Field(
        True,
        description="rewrite the judge's model names m/M into 'Response A'/'Response B' (see relabel_alpacaeval_explanation)",
    )
    limit: int | None = Field(None, ge=1)


class ArenaHardSourceConfig(StrictModel):
    kind: Literal["arena_hard"] = "arena_hard"
    questions: str
    answers: str | None = Field(None, description="a model-answer file; each question gets that answer as its response")
    categories: list[str] | None = Field(None, description="keep only these categories (e.g. hard_prompt)")
    limit: int | None = Field(None, ge=1)


class ColumnMap(StrictModel):
    """Which column holds what. Dotted paths reach into nested values (``messages.1.content``)."""

    prompt: str = "prompt"
    id: str | None = None
    responses: list[str] = Field(default_factory=list, max_length=2)
    score: str | None = None
    preference: str | None = None
    reasoning: str | None = None
    meta: list[str] = Field(default_factory=list)


class TableSourceConfig(StrictModel):
    kind: Literal["table"] = "table"
    path: str
    format: TableFormat = "auto"
    columns: ColumnMap = Field(default_factory=ColumnMap)
    name: str | None = Field(None, description="the records' source name (default: the file name)")
    annotator: str | None = Field(None, description="who made the labels in this file")
    limit: int | None = Field(None, ge=1)


class SyntheticSourceConfig(WorldConfig):
    """The synthetic world (see ``WorldConfig``); its prompts are generated by the data build."""

    kind: Literal["synthetic"] = "synthetic"


SourceConfig = Annotated[
    SyntheticSourceConfig | TuluPreferenceSourceConfig | AlpacaEvalSourceConfig | ArenaHardSourceConfig | TableSourceConfig,
    Field(discriminator="kind"),
]


@dataclass
class LoadedSource:
    """Records of one source and what was skipped, by reason."""

    name: str
    records: list[Record]
    skipped: Counter[str] = field(default_factory=Counter)


# ============================================================================ table reading
def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in _EXTS and p.is_file())
        if not files:
            raise DataError(f"{path}: no .jsonl/.json/.parquet files in this folder", "check the path")
        return files
    if not path.exists():
        raise DataError(f"{path}: file not found", "check the path (relative paths are from the working directory)")
    return [path]


def _format_of(path: Path, fmt: TableFormat) -> str:
    if fmt != "auto":
        return fmt
    f = _EXTS.get(path.suffix.lower())
    if f is None:
        raise DataError(
            f"{path}: cannot tell the file format from the extension {path.suffix!r}",
            "name it .jsonl/.json/.parquet or set format: in the source config",
        )
    return f


def iter_table_rows(path: str | Path, fmt: TableFormat = "auto") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for every row of a JSONL/JSON/Parquet file or folder of them.

    ``where`` is ``file:line`` for JSONL (1-based), ``file[i]`` for JSON arrays and
    ``file row i`` for Parquet (0-based).
    """
    for f in _files(Path(path)):
        kind = _format_of(f, fmt)
        if kind == "jsonl":
            for lineno, obj in iter_jsonl_numbered(f, allow_torn_tail=False):
                yield f"{f}:{lineno}", obj
        elif kind == "json":
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise DataError(f"{f}: invalid JSON ({e.msg} at line {e.lineno})", "fix the file") from e
            if isinstance(data, dict):
                data = [data]
            if not isinstance(data, list):
                raise DataError(f"{f}: expected a JSON array of objects, got {type(data).__name__}")
            for i, obj in enumerate(data):
                if not isinstance(obj, dict):
                    raise DataError(f"{f}[{i}]: expected a JSON object, got {type(obj).__name__}")
                yield f"{f}[{i}]", obj
        else:
            yield from _iter_parquet(f)


def _iter_parquet(f: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow is a core dependency
        raise MissingDependencyError("pyarrow", feature="reading Parquet files") from e
    try:
        pf = pq.ParquetFile(f)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{f}: not a readable Parquet file ({e})", "check the file") from e
    i = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield f"{f} row {i}", row
            i += 1


def get_path(row: dict[str, Any], path: str) -> Any:
    """``row['a']['b'][0]`` for ``path='a.b.0'``; ``KeyError`` if any step is missing."""
    node: Any = row
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                raise KeyError(part)
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit():
            try:
                node = node[int(part)]
            except IndexError as e:
                raise KeyError(part) from e
        else:
            raise KeyError(part)
    return node


def _column_error(where: str, column: str, problem: str, hint: str | None = None) -> DataError:
    return DataError(f"{where}: column '{column}': {problem}", hint or "check the file and the source's column mapping")


def _text(
    row: dict[str, Any], column: str, where: str, *, required: bool = True, allow_empty: bool = False
) -> str | None:
    """Text at ``column``; a list of chat messages gives its last content. Responses may be
    empty (``allow_empty``: a model that answered nothing is data); prompts may not."""
    try:
        v = get_path(row, column)
    except KeyError:
        if not required:
            return None
        raise _column_error(where, column, f"missing (the row has: {', '.join(sorted(row))[:200]})") from None
    if v is None and not required:
        return None
    if isinstance(v, list):  # chat messages: the last one's content
        v = _last_content(v, where, column)
    if not isinstance(v, str) or (required and not allow_empty and not v.strip()):
        shown = repr(v)[:60]
        raise _column_error(where, column, f"expected non-empty text, got {shown}")
    return v


def _last_content(messages: list[Any], where: str, column: str, role: str | None = None) -> str:
    msgs = [m for m in messages if isinstance(m, dict) and (role is None or m.get("role") == role)]
    if not msgs or not isinstance(msgs[-1].get("content"), (str, dict)):
        raise _column_error(where, column, "expected a list of chat messages with 'content'")
    content = msgs[-1]["content"]
    if isinstance(content, dict):  # Arena-Hard v2 answers: {"answer": ...}
        content = content.get("answer")
        if not isinstance(content, str):
            raise _column_error(where, column, "message content has no 'answer' text")
    return content


def _preference(v: Any, where: str, column: str) -> Literal["A", "B", "tie"]:
    if isinstance(v, str):
        s = v.strip()
        if s.upper() in ("A", "B"):
            return s.upper()  # type: ignore[return-value]
        if s.lower() == "tie":
            return "tie"
        try:
            v = float(s)
        except ValueError:
            raise _column_error(where, column, f"preference {v!r} is not A, B, tie, 1, 2 or 1.5") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _column_error(where, column, f"preference {v!r} is not A, B, tie, 1, 2 or 1.5")
    if not 1.0 <= float(v) <= 2.0:
        raise _column_error(where, column, f"preference {v!r} is outside 1..2 (1 = first better, 2 = second better)")
    if float(v) < 1.5:
        return "A"
    return "B" if float(v) > 1.5 else "tie"


# ============================================================================ table source
def load_table_source(cfg: TableSourceConfig) -> LoadedSource:
    name = cfg.name or Path(cfg.path).name
    cols = cfg.columns
    out: list[Record] = []
    for where, row in iter_table_rows(cfg.path, cfg.format):
        prompt = _text(row, cols.prompt, where)
        assert prompt is not None
        responses = [_text(row, c, where, allow_empty=True) or "" for c in cols.responses]
        score = pref = reasoning = None
        if cols.score is not None:
            try:
                raw = get_path(row, cols.score)
            except KeyError:
                raise _column_error(where, cols.score, "missing") from None
            if raw is not None:
                if isinstance(raw, bool) or not isinstance(raw, (int, float)) or float(raw) != int(raw):
                    raise _column_error(where, cols.score, f"expected an integer score, got {raw!r}")
                score = int(raw)
        if cols.preference is not None:
            try:
                raw = get_path(row, cols.preference)
            except KeyError:
                raise _column_error(where, cols.preference, "missing") from None
            pref = None if raw is None else _preference(raw, where, cols.preference)
        if cols.reasoning is not None:
            reasoning = _text(row, cols.reasoning, where, required=False)
        if score is not None and len(responses) != 1:
            raise _column_error(where, cols.score, "a score needs exactly one response column", "set columns.responses to one column")
        if pref is not None and len(responses) != 2:
            raise _column_error(where, cols.preference, "a preference needs two response columns", "set columns.responses to two columns")
        rid = str(get_path(row, cols.id)) if cols.id and _has(row, cols.id) else stable_id(name, prompt, *responses)
        labels = (
            Labels(score=score, preference=pref, reasoning=reasoning, annotator=cfg.annotator)
            if (score is not None or pref is not None or reasoning is not None)
            else None
        )
        meta = {c: _jsonable(get_path(row, c)) for c in cols.meta if _has(row, c)}
        out.append(Record(id=rid, prompt=prompt, responses=responses, labels=labels, source=name, meta=meta))
        if cfg.limit and len(out) >= cfg.limit:
            break
    return LoadedSource(name, out)


def _has(row: dict[str, Any], path: str) -> bool:
    try:
        get_path(row, path)
    except KeyError:
        return False
    return True


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
    except TypeError:
        return str(v)
    return v


# ============================================================================ Tulu 3 preference mixture
def _iter_tulu_rows(cfg: TuluPreferenceSourceConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    if cfg.path is not None:
        yield from iter_table_rows(cfg.path)
        return
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a core dependency
        raise MissingDependencyError("datasets", feature="loading the Tulu 3 mixture from the hub") from e
    try:
        ds = datasets.load_dataset(cfg.hf_id, split=cfg.hf_split, revision=cfg.revision)
    except Exception as e:  # network, auth, missing split: all reported the same way
        raise DataError(
            f"could not load {cfg.hf_id!r} (split {cfg.hf_split!r}) with datasets: {e}",
            "without hub access, download the Parquet files and set path: to the file or folder",
        ) from e
    for i, row in enumerate(ds):
        yield f"{cfg.hf_id}[{cfg.hf_split}] row {i}", row


def _conversation(v: Any, where: str, column: str) -> list[dict[str, Any]]:
    if isinstance(v, str):
        return [{"role": "assistant", "content": v}]
    if not isinstance(v, list) or not all(isinstance(m, dict) for m in v):
        raise _column_error(where, column, f"expected a list of chat messages, got {repr(v)[:60]}")
    return v


def load_tulu_source(cfg: TuluPreferenceSourceConfig, seed: int = 0) -> LoadedSource:
    include = [re.compile(r, re.IGNORECASE) for r in cfg.source_include]
    exclude = [re.compile(r, re.IGNORECASE) for r in cfg.source_exclude]
    skipped: Counter[str] = Counter()
    seen_sources: Counter[str] = Counter()
    out: list[Record] = []
    for where, row in _iter_tulu_rows(cfg):
        src = _text(row, "source", where)
        assert src is not None
        seen_sources[src] += 1
        if include and not any(rx.search(src) for rx in include):
            skipped["source_not_included"] += 1
            continue
        if any(rx.search(src) for rx in exclude):
            skipped["source_excluded"] += 1
            continue
        prompt = _text(row, "prompt", where)
        assert prompt is not None
        chosen = _conversation(get_path(row, "chosen") if _has(row, "chosen") else None, where, "chosen")
        rejected = _conversation(get_path(row, "rejected") if _has(row, "rejected") else None, where, "rejected")
        if cfg.single_turn_only and sum(m.get("role") == "user" for m in chosen) > 1:
            skipped["multi_turn"] += 1
            continue
        rid = str(row["id"]) if row.get("id") not in (None, "") else stable_id("tulu3", prompt)
        meta: dict[str, Any] = {"tulu_source": src}
        responses: list[str] = []
        labels = None
        if cfg.keep_responses:
            a = _last_content(chosen, where, "chosen", role="assistant")
            b = _last_content(rejected, where, "rejected", role="assistant")
            chosen_first = cfg.response_order == "chosen_first" or random.Random(f"{seed}:{rid}").random() < 0.5
            responses = [a, b] if chosen_first else [b, a]
            labels = Labels(preference="A" if chosen_first else "B", annotator="tulu3-mixture")
            meta["chosen_position"] = "A" if chosen_first else "B"
        out.append(Record(id=f"tulu3-{rid}", prompt=prompt, responses=responses, labels=labels, source="tulu3", meta=meta))
        if cfg.limit and len(out) >= cfg.limit:
            break
    if not out and seen_sources:
        shown = ", ".join(f"{s!r}" for s, _ in seen_sources.most_common(10))
        raise DataError(
            f"no Tulu rows kept: none of the 'source' values matched source_include={cfg.source_include} "
            f"(seen: {shown})",
            "adjust source_include / source_exclude to the source names in your copy of the mixture",
        )
    return LoadedSource("tulu3", out, skipped)


# ============================================================================ AlpacaEval
_ALPACA_REF = re.compile(
    r"\b([Mm]odel)(s?)\s+(?:'([mM])'|\"([mM])\"|‘([mM])’|“([mM])”|([mM])(?![\w]))"
    r"(?P<poss>(?:['’]s|s)\s+(?:response|output|answer)\b)?"
)
_ALPACA_QUOTED = re.compile(
    r"(?:'([mM])'|\"([mM])\"|‘([mM])’|“([mM])”)(?P<poss>(?:['’]s|s)\s+(?:response|output|answer)\b)?"
)
_ALPACA_WINNER = re.compile(
    r"[Mm]odel\s+['\"‘“]?([mM])['\"’”]?\s+(?:is|was)\s+(?:ranked\s+(?:higher|first)|the better|better|preferred)"
)


def _first_id(*groups: str | None) -> str:
    return next(g for g in groups if g)


def relabel_alpacaeval_explanation(explanation: str, preference: Literal["A", "B", "tie"]) -> tuple[str, str]:
    """Rewrite the AlpacaEval judge's model names into ``Response A`` / ``Response B``.

    The CoT annotator saw the two outputs under the names ``m`` and ``M`` in a randomised order,
    and the files do not record that order, so "Model M" may be ``output_1`` or ``output_2``.
    The winner is the name an explicit "Model X is ranked higher/better" sentence gives, else
    the first name mentioned (the explanations lead with the winner: on the 7 shared files the
    first mention agrees with the explicit sentence in 459 of 467 cases). Returns
    ``(text, method)``; method ``explicit`` / ``first_mention``, or ``unchanged`` when no name or
    a tie leaves the mapping unknown.
    """
    if preference == "tie":
        return explanation, "unchanged"
    m = _ALPACA_WINNER.search(explanation)
    method = "explicit"
    if m:
        winner = m.group(1)
    else:
        first = _ALPACA_REF.search(explanation) or _ALPACA_QUOTED.search(explanation)
        if first is None:
            return explanation, "unchanged"
        groups = first.groups()[2:7] if first.re is _ALPACA_REF else first.groups()[:4]
        winner = _first_id(*groups)
        method = "first_mention"
    loser = "M" if winner == "m" else "m"
    other = "B" if preference == "A" else "A"
    pos = {winner: preference, loser: other}

    def ref(mm: re.Match[str]) -> str:
        ident = _first_id(*mm.groups()[2:7])
        word = "Responses" if mm.group(2) and not mm.group("poss") else "Response"
        if mm.group(1)[0].islower():
            word = word.lower()
        return f"{word} {pos[ident]}"

    text = _ALPACA_REF.sub(ref, explanation)
    text = _ALPACA_QUOTED.sub(lambda mm: f"Response {pos[_first_id(*mm.groups()[:4])]}", text)
    return text, method


def load_alpacaeval_source(cfg: AlpacaEvalSourceConfig) -> LoadedSource:
    skipped: Counter[str] = Counter()
    out: list[Record] = []
    for p in cfg.paths:
        for where, row in iter_table_rows(p):
            instruction = _text(row, "instruction", where)
            out1 = _text(row, "output_1", where, allow_empty=True)
            out2 = _text(row, "output_2", where, allow_empty=True)
            assert instruction is not None and out1 is not None and out2 is not None
            if "preference" not in row:
                raise _column_error(where, "preference", "missing")
            raw = row["preference"]
            if raw is None:
                skipped["no_verdict"] += 1
                continue
            pref = _preference(raw, where, "preference")
            if pref == "tie" and not cfg.include_ties:
                skipped["tie"] += 1
                continue
            explanation = row.get("explanation")
            if explanation is not None and not isinstance(explanation, str):
                raise _column_error(where, "explanation", f"expected text or null, got {repr(explanation)[:60]}")
            meta: dict[str, Any] = {
                "generator_1": row.get("generator_1"),
                "generator_2": row.get("generator_2"),
                "dataset": row.get("dataset"),
                "preference_raw": raw,
            }
            reasoning = explanation or None
            if reasoning and cfg.relabel_explanations:
                reasoning, method = relabel_alpacaeval_explanation(reasoning, pref)
                meta["explanation_relabel"] = method
                if method != "unchanged":
                    meta["explanation_raw"] = explanation
            annotator = row.get("annotator") if isinstance(row.get("annotator"), str) else "alpaca_eval"
            out.append(
                Record(
                    id=stable_id("alpacaeval", instruction, out1, out2),
                    prompt=instruction,
                    responses=[out1, out2],
                    labels=Labels(preference=pref, reasoning=reasoning, annotator=annotator),
                    source="alpacaeval",
                    meta=meta,
                )
            )
            if cfg.limit and len(out) >= cfg.limit:
                return LoadedSource("alpacaeval", out, skipped)
    return LoadedSource("alpacaeval", out, skipped)


# ============================================================================ Arena-Hard-Auto
@dataclass(frozen=True)
class ArenaAnswer:
    uid: str
    model: str
    text: str


def load_arena_hard_answers(path: str | Path) -> dict[str, ArenaAnswer]:
    """``uid → answer`` from an Arena-Hard-Auto model-answer file (v2 ``messages`` or v0.1 ``choices``)."""
    out: dict[str, ArenaAnswer] = {}
    for where, row in iter_table_rows(path):
        uid = row.get("uid", row.get("question_id"))
        if not isinstance(uid, str) or not uid:
            raise _column_error(where, "uid", "missing (v2 'uid' or v0.1 'question_id')")
        model = row.get("model", row.get("model_id"))
        if "messages" in row:
            msgs = row["messages"]
            if not isinstance(msgs, list):
                raise _column_error(where, "messages", "expected a list of chat messages")
            text = _last_content(msgs, where, "messages", role="assistant")
        elif "choices" in row:
            text = _text(row, "choices.0.turns.0.content", where, allow_empty=True)
            assert text is not None
        else:
            raise _column_error(where, "messages", "missing (v2 'messages' or v0.1 'choices')")
        out[uid] = ArenaAnswer(uid, str(model) if model is not None else "", text)
    return out


def load_arena_hard_source(cfg: ArenaHardSourceConfig) -> LoadedSource:
    answers = load_arena_hard_answers(cfg.answers) if cfg.answers else None
    skipped: Counter[str] = Counter()
    out: list[Record] = []
    for where, row in iter_table_rows(cfg.questions):
        uid = row.get("uid", row.get("question_id"))
        if not isinstance(uid, str) or not uid:
            raise _column_error(where, "uid", "missing (v2 'uid' or v0.1 'question_id')")
        prompt = _text(row, "prompt", where) if "prompt" in row else _text(row, "turns.0.content", where)
        assert prompt is not None
        category = row.get("category")
        if cfg.categories is not None and category not in cfg.categories:
            skipped["category"] += 1
            continue
        meta: dict[str, Any] = {"uid": uid, "category": category, "subcategory": row.get("subcategory")}
        responses: list[str] = []
        if answers is not None:
            ans = answers.get(uid)
            if ans is None:
                skipped["no_answer"] += 1
            else:
                responses = [ans.text]
                meta["answer_model"] = ans.model
        out.append(Record(id=f"arena-{uid}", prompt=prompt, responses=responses, source="arena-hard", meta=meta))
        if cfg.limit and len(out) >= cfg.limit:
            break
    if skipped["no_answer"]:
        log.warning("%d Arena-Hard questions have no answer in %s", skipped["no_answer"], cfg.answers)
    return LoadedSource("arena-hard", out, skipped)


# ============================================================================ dispatch
def load_source(cfg: SourceConfig, *, seed: int = 0) -> LoadedSource:
    """Read one (non-synthetic) source into records."""
    if isinstance(cfg, TuluPreferenceSourceConfig):
        return load_tulu_source(cfg, seed)
    if isinstance(cfg, AlpacaEvalSourceConfig):
        return load_alpacaeval_source(cfg)
    if isinstance(cfg, ArenaHardSourceConfig):
        return load_arena_hard_source(cfg)
    if isinstance(cfg, TableSourceConfig):
        return load_table_source(cfg)
    raise DataError(
        "the synthetic world is generated, not loaded",
        "build it with `judgelab data build` (stages.data_build) or data.world.generate_prompts",
    )


def dedupe_ids(records: Iterable[Record]) -> tuple[list[Record], int]:
    """Drop records whose id was already seen; returns (kept, dropped)."""
    seen: set[str] = set()
    kept: list[Record] = []
    dropped = 0
    for r in records:
        if r.id in seen:
            dropped += 1
            continue
        seen.add(r.id)
        kept.append(r)
    return kept, dropped


__all__ = [
    "TULU_HF_ID",
    "AlpacaEvalSourceConfig",
    "ArenaAnswer",
    "ArenaHardSourceConfig",
    "ColumnMap",
    "LoadedSource",
    "SourceConfig",
    "SyntheticSourceConfig",
    "TableSourceConfig",
    "TuluPreferenceSourceConfig",
    "dedupe_ids",
    "get_path",
    "iter_table_rows",
    "load_alpacaeval_source",
    "load_arena_hard_answers",
    "load_arena_hard_source",
    "load_source",
    "load_table_source",
    "load_tulu_source",
    "relabel_alpacaeval_explanation",
]
