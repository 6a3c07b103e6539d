"""``annotate`` stage (L4): judge every record of a JSONL/Parquet file, resumably.

Input: judgelab records (``judgelab.data.records.Record``: ``id``, ``prompt``, ``responses``,
``source``, ``meta``) as JSONL or Parquet. The judge's template decides what a row needs:

- pointwise templates: exactly one response (rubric-guided ones also ``meta[rubric_key]``);
- pairwise / arena templates: exactly two responses (A, B), judged in both orders by default;
- ``rubric-gen-v1``: only the prompt (the output records carry the written rubric).

Every row is checked before any judging starts. A bad row (invalid JSON, not an object, missing
or mistyped field, wrong number of responses, duplicate id) is a ``DataError`` naming file and
line; with ``skip_invalid: true`` it is listed in ``RUN_DIR/skipped_rows.jsonl`` instead.

Output: ``RUN_DIR/judgements.jsonl``, one ``judgelab.annotation/v1`` record per input row with
the verdict, expected score, reasoning, raw text, invalid flag, timings and judge identity.
Records are appended (fsynced) as each chunk finishes and judgements go to the SQLite cache, so
``kill -9`` at any point loses nothing finished: rerunning the same command skips the ids already
in the output (exactly once) and serves judgements made but not yet written from the cache.

The invalid-output budget (``judge.max_invalid_rate``) is checked before each chunk and at the
end, after finished records are written, so a run that trips it keeps its work.

Run: ``judgelab annotate CONFIG [dotted.overrides] --run-dir DIR`` (or ``judgelab run CONFIG``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from judgelab.backends.base import Backend
from judgelab.config.stage import StageConfig
from judgelab.data.records import Labels, Record, validation_error_to_data_error
from judgelab.errors import DataError
from judgelab.judges.cache import JudgementCache
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.templates import get_template
from judgelab.judges.types import Battle, Judgement, PairwiseItem, PointwiseItem
from judgelab.store.jsonl import iter_jsonl, write_jsonl_atomic
from judgelab.store.resumable import ResumableJob
from judgelab.store.rundir import RunDir

logger = logging.getLogger(__name__)

ANNOTATION_SCHEMA = "judgelab.annotation/v1"
OUTPUT_FILE = "judgements.jsonl"
SKIPPED_FILE = "skipped_rows.jsonl"
CACHE_FILE = "judge_cache.sqlite"


class AnnotateConfig(StageConfig):
    """Judge every record of ``input`` with ``judge``; see the module docstring."""

    stage: Literal["annotate"] = "annotate"
    input: str = Field(..., min_length=1, description="JSONL or Parquet of judgelab records")
    judge: JudgeSpec
    both_orders: bool = Field(True, description="pairwise/arena: judge (A,B) and (B,A)")
    rubric_key: str = Field("rubric", description="rubric-guided templates read meta[rubric_key]")
    chunk_size: int = Field(16, ge=1, description="records per judge call (and per output append)")
    concurrency: int = Field(2, ge=1, description="chunks in flight at once")
    skip_invalid: bool = Field(False, description="list bad input rows in skipped_rows.jsonl instead of failing")
    cache: bool = True
    cache_path: str | None = Field(None, description=f"SQLite judgement cache; None = RUN_DIR/{CACHE_FILE}")
    limit: int | None = Field(None, ge=1, description="judge only the first N valid rows")


@dataclass(frozen=True)
class AnnotateResult:
    run_dir: Path
    output: Path
    total: int
    done_before: int
    computed: int
    skipped_rows: int
    invalid: int
    cache: dict[str, int] | None
    seconds: float

    @property
    def invalid_rate(self) -> float:
        return self.invalid / self.total if self.total else 0.0


# ---------------------------------------------------------------------------- input
def _read_rows(path: Path) -> list[tuple[str, Any]]:
    """``(where, obj_or_error)`` per row; an ``Exception`` stands for a row that did not parse."""
    if not path.is_file():
        raise DataError(f"{path}: file not found", "check input: (relative paths are from the working directory)")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for a corrupt file
            raise DataError(f"{path}: not a readable Parquet file ({e})", "check the file") from e
        return [(f"{path}:row {i + 1}", row) for i, row in enumerate(rows)]
    out: list[tuple[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                out.append((where, json.loads(line)))
            except json.JSONDecodeError as e:
                out.append((where, DataError(f"{where}: invalid JSON ({e.msg} at column {e.colno})",
                                             "fix or remove that line, or set skip_invalid: true")))
    return out


def _check_row(where: str, obj: Any, protocol: str, needs_rubric: bool, rubric_key: str) -> Record:
    if isinstance(obj, DataError):
        raise obj
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}", "each row must be one record")
    try:
        rec = Record.model_validate(obj)
    except ValidationError as e:
        raise validation_error_to_data_error(e, where) from e
    n = len(rec.responses)
    want = {"pointwise": 1, "pairwise": 2, "arena": 2}.get(protocol)
    if want is not None and n != want:
        raise DataError(
            f"{where}: record {rec.id!r} has {n} response(s); a {protocol} judge needs {want}",
            "pick a judge template that matches the data, or fix the record",
        )
    if needs_rubric and not isinstance(rec.meta.get(rubric_key), str):
        raise DataError(
            f"{where}: record {rec.id!r} has no text meta.{rubric_key} for the rubric-guided template",
            "write rubrics first (annotate with template rubric-gen-v1) and copy them into meta",
        )
    return rec


def load_annotate_items(
    path: str | Path, protocol: str, *, needs_rubric: bool = False, rubric_key: str = "rubric",
    skip_invalid: bool = False,
) -> tuple[list[Record], list[dict[str, str]]]:
    """Valid records and the skipped rows (``{"where", "reason"}``); raises on the first bad row
    unless ``skip_invalid``."""
    records: list[Record] = []
    skipped: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for where, obj in _read_rows(Path(path)):
        try:
            rec = _check_row(where, obj, protocol, needs_rubric, rubric_key)
            if rec.id in seen:
                raise DataError(f"{where}: duplicate id {rec.id!r} (first at {seen[rec.id]})", "ids must be unique")
        except DataError as e:
            if not skip_invalid:
                raise
            skipped.append({"where": where, "reason": e.message.removeprefix(f"{where}: ")})
            continue
        seen[rec.id] = where
        records.append(rec)
    return records, skipped


# ---------------------------------------------------------------------------- output
def _strip_identity(j: Judgement) -> dict[str, Any]:
    d = j.to_dict()
    d.pop("judge", None)
    return d


def _base_record(rec: Record, judge: Judge) -> dict[str, Any]:
    return {
        "schema": ANNOTATION_SCHEMA,
        "id": rec.id,
        "protocol": judge.protocol,
        "prompt": rec.prompt,
        "responses": list(rec.responses),
        "source": rec.source,
        "meta": rec.meta,
        "judge": judge.record_identity(),
        "template": judge.template.name,
        "template_hash": judge.template.sha256,
        "mode": judge.spec.mode,
    }


def pointwise_record(rec: Record, j: Judgement, judge: Judge) -> dict[str, Any]:
    out = _base_record(rec, judge)
    out.update(_strip_identity(j))
    out["score"] = j.verdict.score
    out["invalid"] = not j.verdict.parsed
    return out


def rubric_record(rec: Record, j: Judgement, judge: Judge) -> dict[str, Any]:
    out = pointwise_record(rec, j, judge)
    out["rubric"] = j.verdict.rubric
    return out


def battle_record(rec: Record, b: Battle, judge: Judge) -> dict[str, Any]:
    out = _base_record(rec, judge)
    out.update(
        winner=b.winner,
        consistent=b.consistent,
        first_choice=b.first_choice,
        second_choice=b.second_choice,
        invalid=b.winner is None,
        first=_strip_identity(b.first),
        second=None if b.second is None else _strip_identity(b.second),
    )
    return out


def to_labelled_record(annotation: Mapping[str, Any]) -> Record | None:
    """The input record with the judge's label (``labels.score`` / ``labels.preference``), or None
    for an invalid annotation (and for rubric annotations)."""
    if annotation.get("invalid") or annotation.get("protocol") not in ("pointwise", "pairwise"):
        return None
    annotator = annotation["judge"].get("name") or annotation["judge"].get("judge_id")
    if annotation["protocol"] == "pointwise":
        labels = Labels(score=annotation["score"], reasoning=annotation.get("reasoning"), annotator=annotator)
    else:
        labels = Labels(preference=annotation["winner"], reasoning=annotation["first"].get("reasoning"),
                        annotator=annotator)
    return Record(id=annotation["id"], prompt=annotation["prompt"], responses=annotation["responses"],
                  source=annotation["source"], meta=annotation.get("meta") or {}, labels=labels)


# ---------------------------------------------------------------------------- stage
def run_annotate(
    config: AnnotateConfig,
    run_dir: str | Path,
    *,
    show_progress: bool = True,
    backend: Backend | None = None,
) -> AnnotateResult:
    """Annotate ``config.input`` into ``run_dir/judgements.jsonl`` (resumable; see module doc)."""
    t0 = time.perf_counter()
    template = get_template(config.judge.template, config.judge.mode)
    run = RunDir.open(run_dir, config, stage="annotate", seed=config.seed)
    try:
        records, skipped = load_annotate_items(
            config.input, template.protocol, needs_rubric="rubric" in template.blocks,
            rubric_key=config.rubric_key, skip_invalid=config.skip_invalid,
        )
        write_jsonl_atomic(run.file(SKIPPED_FILE), skipped)
        if skipped:
            logger.warning("annotate: skipped %d bad input row(s); see %s", len(skipped), run.file(SKIPPED_FILE))
        if config.limit is not None:
            records = records[: config.limit]
        cache = None
        if config.cache:
            cache = JudgementCache(config.cache_path or run.file(CACHE_FILE))
        run.record_template(template.key, template.sha256)
        try:
            result = asyncio.run(_annotate(config, run, records, cache, backend, show_progress))
        finally:
            if cache is not None:
                cache.close()
        invalid = sum(1 for r in iter_jsonl(run.file(OUTPUT_FILE)) if r.get("invalid"))
        total = len(records)
        res = AnnotateResult(
            run_dir=run.path,
            output=run.file(OUTPUT_FILE),
            total=total,
            done_before=result.done_before,
            computed=result.computed,
            skipped_rows=len(skipped),
            invalid=invalid,
            cache=None if cache is None else cache.stats,
            seconds=time.perf_counter() - t0,
        )
        run.record_output(
            OUTPUT_FILE, records=total, invalid=invalid, skipped_rows=len(skipped),
            schema=ANNOTATION_SCHEMA,
        )
        run.set_status(
            "completed",
            stats={
                "judge/invalid_rate": res.invalid_rate,
                "annotate/done_before": res.done_before,
                "annotate/computed": res.computed,
                "annotate/seconds": res.seconds,
                "cache": res.cache,
            },
        )
        logger.info(
            "annotate: %d records (%d done before, %d computed, %d invalid, %d rows skipped) in %s",
            total, res.done_before, res.computed, invalid, len(skipped), res.output,
        )
        return res
    except KeyboardInterrupt:
        run.set_status("interrupted")
        raise
    except BaseException:
        run.set_status("failed")
        raise


async def _annotate(
    config: AnnotateConfig,
    run: RunDir,
    records: Sequence[Record],
    cache: JudgementCache | None,
    backend: Backend | None,
    show_progress: bool,
):  # type: ignore[no-untyped-def]
    judge = Judge(config.judge, backend=backend, cache=cache)
    rubric_key = config.rubric_key

    async def process(chunk: list[Record]) -> list[dict[str, Any]]:
        judge.check_invalid_budget()  # previous chunks are already written
        if judge.protocol == "pointwise":
            items = [PointwiseItem(r.prompt, r.responses[0], rubric=r.meta.get(rubric_key)) for r in chunk]
            js = await judge.score_pointwise(items, check_budget=False)
            return [pointwise_record(r, j, judge) for r, j in zip(chunk, js)]
        if judge.protocol in ("pairwise", "arena"):
            pitems = [PairwiseItem(r.prompt, r.responses[0], r.responses[1], rubric=r.meta.get(rubric_key))
                      for r in chunk]
            bs = await judge.score_pairwise(pitems, both_orders=config.both_orders, check_budget=False)
            return [battle_record(r, b, judge) for r, b in zip(chunk, bs)]
        js = await judge.write_rubrics([r.prompt for r in chunk], check_budget=False)
        return [rubric_record(r, j, judge) for r, j in zip(chunk, js)]

    job: ResumableJob[Record] = ResumableJob(
        output=run.file(OUTPUT_FILE),
        key=lambda r: r.id,
        process=process,
        chunk_size=config.chunk_size,
        concurrency=config.concurrency,
        description=f"annotate ({judge.name})",
        show_progress=show_progress,
    )
    try:
        result = await job.run(records)
        judge.check_invalid_budget()
    finally:
        await judge.aclose()
    return result


__all__ = [
    "ANNOTATION_SCHEMA",
    "AnnotateConfig",
    "AnnotateResult",
    "battle_record",
    "load_annotate_items",
    "pointwise_record",
    "run_annotate",
    "to_labelled_record",
]
