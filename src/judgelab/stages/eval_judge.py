"""``eval_judge`` stage (L4): score any set of judges against held-out gold labels, side by side.

    judgelab eval-judge experiments/judges/cpu_eval.yaml --run-dir runs/judges/eval

Judges: trained proxies (``from_run: RUN_DIR`` of a train-judge run, i.e. its ``judge.yaml``),
base models, the gold itself, hosted models — any ``JudgeSpec``. Data: an annotate
``judgements.jsonl`` or labelled records (``judgelab.data.labelled``); pointwise items are scored,
pairwise items are judged in both orders (``both_orders``). Gold ties are not scored pairwise (the
judge cannot answer "tie"); their number is reported.

Outputs (``RUN_DIR/``):

- ``judge_eval.json`` — ``judgelab.judge_eval/v1`` (docs/records.md): one row per judge with α,
  accuracy, position consistency, invalid rate, mean reasoning tokens, ECE, bootstrap CIs and the
  extras of ``judgelab.evaluation.judge_eval``;
- ``judge_eval.md`` — the side-by-side table; the CLI prints it as a rich table;
- ``eval_items.jsonl`` — ``judgelab.judge_eval_item/v1``: every judge's verdict per item, so each
  number can be recomputed;
- with ``breakdown: KEY`` (a ``meta`` key, e.g. ``variant`` for the synthetic world's rewritten
  responses): per judge, the same items grouped by ``meta[KEY]`` — mean judge score, mean gold
  score and invalid rate (pointwise) or accuracy (pairwise) — in ``judge_eval.json``
  (``judges[].breakdown``), ``judge_eval.md`` and, per item, ``eval_items.jsonl`` (``group``);
- ``judge_cache.sqlite`` — judgements by content: a rerun after a crash re-judges nothing done.

A completed run returns its ``judge_eval.json`` without loading a model.
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

from pydantic import Field, model_validator

from judgelab.backends.base import Backend
from judgelab.config.specs import StrictModel
from judgelab.config.stage import StageConfig
from judgelab.data.labelled import LabelledItem, load_labelled_items
from judgelab.errors import ConfigError, DataError, RunDirError
from judgelab.evaluation.judge_eval import (
    MISSING_GROUP,
    BootstrapSettings,
    compute_breakdown,
    compute_pairwise_row,
    compute_pointwise_row,
    pairwise_item_accuracy,
    reasoning_summary,
    render_breakdown_md,
    render_judge_eval_md,
)
from judgelab.judges.cache import JudgementCache
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.templates import get_template
from judgelab.judges.types import Judgement, PairwiseItem, PointwiseItem
from judgelab.store.jsonl import write_json_atomic, write_jsonl_atomic, write_text_atomic
from judgelab.store.rundir import RunDir

logger = logging.getLogger(__name__)

STAGE = "eval_judge"
JUDGE_EVAL_SCHEMA = "judgelab.judge_eval/v1"
ITEM_SCHEMA = "judgelab.judge_eval_item/v1"
RESULT_FILE = "judge_eval.json"
MARKDOWN_FILE = "judge_eval.md"
ITEMS_FILE = "eval_items.jsonl"
CACHE_FILE = "judge_cache.sqlite"
JudgeKind = Literal["proxy", "base", "gold", "hosted", "other"]


class EvalJudgeEntry(StrictModel):
    """One judge to evaluate: a full ``judge`` spec, or ``from_run`` = a train-judge run dir."""

    name: str = Field(..., min_length=1, description="row label (also the judge's name in records)")
    kind: JudgeKind = "proxy"
    judge: JudgeSpec | None = None
    from_run: str | None = Field(None, description="a train-judge run dir; its judge.yaml is used")

    @model_validator(mode="after")
    def _one_source(self) -> EvalJudgeEntry:
        if (self.judge is None) == (self.from_run is None):
            raise ValueError(f"judge {self.name!r}: give exactly one of judge: (a spec) or from_run: (a run dir)")
        return self

    def spec(self) -> JudgeSpec:
        if self.judge is not None:
            spec = self.judge
        else:
            from judgelab.stages.train_judge import load_trained_judge_spec

            spec = load_trained_judge_spec(self.from_run or "")
        return spec.model_copy(update={"name": self.name})


class BootstrapSpec(StrictModel):
    n_resamples: int = Field(1000, ge=10)
    confidence: float = Field(0.95, gt=0, lt=1)


class EvalJudgeConfig(StageConfig):
    """Evaluate judges against gold labels; see the module docstring."""

    stage: Literal["eval_judge"] = "eval_judge"
    data: str = Field(..., min_length=1, description="held-out gold: annotate judgements.jsonl or labelled records")
    limit: int | None = Field(None, ge=1, description="use only the first N labelled items")
    judges: list[EvalJudgeEntry] = Field(..., min_length=1)
    both_orders: bool = Field(True, description="pairwise: judge (A, B) and (B, A)")
    rubric_key: str = Field("rubric", description="rubric-guided judges read meta[rubric_key]")
    bootstrap: BootstrapSpec = Field(default_factory=BootstrapSpec)
    calibration_bins: int = Field(10, ge=1)
    reasoning_tokenizer: str | None = Field(
        None,
        description="model whose tokenizer counts reasoning tokens for non-hf judges; hf judges use "
        "their own; None = words only for non-hf judges",
    )
    chunk_size: int = Field(64, ge=1, description="items per judge call (the cache is written per call)")
    breakdown: str | None = Field(
        None,
        description="a meta key (e.g. variant): also report each judge per value of meta[key] — mean "
        "judge score, mean gold score and invalid rate (pointwise) or accuracy (pairwise)",
    )
    cache: bool = True
    cache_path: str | None = Field(None, description=f"None = RUN_DIR/{CACHE_FILE}")

    @model_validator(mode="after")
    def _unique_names(self) -> EvalJudgeConfig:
        names = [j.name for j in self.judges]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"judge names must be unique; repeated: {dup}")
        return self


@dataclass
class EvalJudgeResult:
    run_dir: Path
    output: Path
    rows: list[dict[str, Any]]
    n_items: int
    already_completed: bool = False


# ------------------------------------------------------------------------------------ stage
def run_eval_judge(
    config: EvalJudgeConfig, run_dir: str | Path, *, backends: Mapping[str, Backend] | None = None
) -> EvalJudgeResult:
    """Evaluate ``config.judges`` on ``config.data`` into ``run_dir`` (see the module docstring).

    ``backends``: judge name → an already-built backend to use instead of the spec's (tests).
    """
    run_dir = Path(run_dir)
    done = _completed(config, run_dir)
    if done is not None:
        return done
    run = RunDir.open(run_dir, config, stage=STAGE, seed=config.seed)
    with run.guard():
        loaded = load_labelled_items(config.data, limit=config.limit)
        items = loaded.items
        if not items:
            raise DataError(f"{config.data}: no gold-labelled items", "check the file (invalid gold verdicts are skipped)")
        protocol = items[0].protocol
        ties = 0
        if protocol == "pairwise":
            ties = sum(it.choice == "tie" for it in items)
            items = [it for it in items if it.choice != "tie"]
        specs = [(entry, entry.spec()) for entry in config.judges]
        for entry, spec in specs:
            _check_protocol(entry.name, spec, protocol)
        cache = JudgementCache(config.cache_path or run.file(CACHE_FILE)) if config.cache else None
        rows: list[dict[str, Any]] = []
        item_records: list[dict[str, Any]] = []
        try:
            for entry, spec in specs:
                t0 = time.perf_counter()
                judge = Judge(spec, backend=(backends or {}).get(entry.name), cache=cache)
                run.record_template(judge.template.key, judge.template.sha256)
                outcome = asyncio.run(_judge_all(judge, items, protocol, config))
                row, recs = _row(entry, judge, items, outcome, protocol, config)
                row["seconds"] = time.perf_counter() - t0
                rows.append(row)
                item_records.extend(recs)
                logger.info("eval-judge: %s done in %.1fs", entry.name, row["seconds"])
        finally:
            if cache is not None:
                cache.close()
        write_jsonl_atomic(run.file(ITEMS_FILE), item_records)
        doc = {
            "schema": JUDGE_EVAL_SCHEMA,
            "data": str(config.data),
            "protocol": protocol,
            "n_items": len(items),
            "gold_ties_dropped": ties,
            "skipped_rows": dict(loaded.skipped),
            "bootstrap": {**config.bootstrap.model_dump(), "seed": config.seed},
            "judges": rows,
        }
        write_json_atomic(run.file(RESULT_FILE), doc)
        notes = [f"Data: `{config.data}`, {len(items)} items ({protocol})"
                 + (f", {ties} gold ties left out" if ties else "") + "."]
        if config.breakdown is not None:
            notes += render_breakdown_md(config.breakdown, rows, protocol)
        write_text_atomic(run.file(MARKDOWN_FILE), render_judge_eval_md(rows, notes=notes))
        run.record_output(RESULT_FILE, schema=JUDGE_EVAL_SCHEMA, judges=len(rows), items=len(items))
        run.set_status("completed")
        return EvalJudgeResult(run.path, run.file(RESULT_FILE), rows, len(items))


def _completed(config: EvalJudgeConfig, run_dir: Path) -> EvalJudgeResult | None:
    """The result of a completed run of this config in ``run_dir``, else None."""
    if not (run_dir / "manifest.json").exists():
        return None
    prev = RunDir.load(run_dir)
    if not prev.completed_run_of(STAGE, config):
        return None
    try:
        doc = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
        return EvalJudgeResult(run_dir, run_dir / RESULT_FILE, list(doc["judges"]), int(doc["n_items"]), True)
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise RunDirError(f"{run_dir} is marked complete but {RESULT_FILE} is unreadable: {e}",
                          "delete the run dir and rerun") from e


def _check_protocol(name: str, spec: JudgeSpec, protocol: str) -> None:
    tpl_protocol = get_template(spec.template, spec.mode).protocol
    ok = tpl_protocol == protocol or (protocol == "pairwise" and tpl_protocol == "arena")
    if not ok:
        raise ConfigError(
            f"judge {name!r} uses the {tpl_protocol} template {spec.template}, but the gold labels are {protocol}",
            f"give it a {protocol} template",
        )


async def _judge_all(judge: Judge, items: Sequence[LabelledItem], protocol: str, config: EvalJudgeConfig) -> list[Any]:
    out: list[Any] = []
    key = config.rubric_key
    try:
        for start in range(0, len(items), config.chunk_size):
            chunk = items[start : start + config.chunk_size]
            if protocol == "pointwise":
                out += await judge.score_pointwise(
                    [PointwiseItem(it.instruction, it.responses[0], rubric=it.rubric(key)) for it in chunk]
                )
            else:
                out += await judge.score_pairwise(
                    [PairwiseItem(it.instruction, it.responses[0], it.responses[1], rubric=it.rubric(key))
                     for it in chunk],
                    both_orders=config.both_orders,
                )
            logger.info("eval-judge %s: %d/%d items", judge.name, len(out), len(items))
    finally:
        await judge.aclose()
    return out


def _judgements(outcome: Any) -> list[Judgement]:
    if isinstance(outcome, Judgement):
        return [outcome]
    return [outcome.first] + ([outcome.second] if outcome.second is not None else [])


def _row(entry: EvalJudgeEntry, judge: Judge, items: Sequence[LabelledItem], outcomes: list[Any], protocol: str,
         config: EvalJudgeConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    boot = BootstrapSettings(config.bootstrap.n_resamples, config.bootstrap.confidence, config.seed)
    all_js = [j for o in outcomes for j in _judgements(o)]
    if protocol == "pointwise":
        metrics = compute_pointwise_row(
            [int(it.label) for it in items],
            [o.verdict.score if o.parsed else None for o in outcomes],
            [o.reward if o.parsed else None for o in outcomes],
            [o.expected_score if o.parsed else None for o in outcomes],
            low=judge.spec.score_min, high=judge.spec.score_max, n_bins=config.calibration_bins, bootstrap=boot,
        )
    else:
        metrics = compute_pairwise_row(
            [str(it.label) for it in items],
            [o.first_choice for o in outcomes],
            [o.second_choice for o in outcomes] if config.both_orders else None,
            bootstrap=boot,
        )
    tokens, words, output_tokens = _reasoning_lengths(judge.spec, all_js, config)
    row: dict[str, Any] = {
        "name": entry.name,
        "kind": entry.kind,
        **metrics,
        **_breakdown(items, outcomes, protocol, config),
        "invalid_rate": sum(not j.parsed for j in all_js) / len(all_js) if all_js else None,
        "n_judgements": len(all_js),
        **reasoning_summary(tokens, words),
        "mean_output_tokens": None if output_tokens is None else sum(output_tokens) / max(1, len(output_tokens)),
        "judge_id": judge.judge_id,
        "template": judge.template.name,
        "mode": judge.spec.mode,
        "readout": judge.spec.readout,
        "backend": dict(judge.identity.get("backend", {})),
        "from_run": entry.from_run,
    }
    records = []
    tok_iter = iter(tokens) if tokens is not None else None
    for it, o in zip(items, outcomes):
        js = _judgements(o)
        rec: dict[str, Any] = {"schema": ITEM_SCHEMA, "judge": entry.name, "id": it.id, "gold": it.label,
                               "invalid": [not j.parsed for j in js],
                               "reasoning_tokens": [next(tok_iter) for _ in js] if tok_iter else None}
        if config.breakdown is not None:
            rec["group"] = _group_of(it, config.breakdown)
        if protocol == "pointwise":
            rec.update(score=o.verdict.score, expected=o.expected_score, reward=o.reward if o.parsed else None)
        else:
            rec.update(first_choice=o.first_choice, second_choice=o.second_choice, winner=o.winner)
        records.append(rec)
    return row, records


def _group_of(item: LabelledItem, key: str) -> str:
    v = item.meta.get(key)
    return MISSING_GROUP if v is None else str(v)


def _breakdown(items: Sequence[LabelledItem], outcomes: list[Any], protocol: str,
               config: EvalJudgeConfig) -> dict[str, Any]:
    """``{"breakdown": {"key", "groups"}}`` when ``config.breakdown`` names a meta key, else nothing."""
    key = config.breakdown
    if key is None:
        return {}
    groups = [_group_of(it, key) for it in items]
    if protocol == "pointwise":
        values = [o.reward if o.parsed else None for o in outcomes]
        gold: list[Any] = [int(it.label) for it in items]
    else:
        gold = [str(it.label) for it in items]
        values = pairwise_item_accuracy(gold, [o.first_choice for o in outcomes],
                                        [o.second_choice for o in outcomes] if config.both_orders else None)
    return {"breakdown": {"key": key, "groups": compute_breakdown(groups, gold, values, protocol=protocol)}}


def _reasoning_lengths(
    spec: JudgeSpec, judgements: list[Judgement], config: EvalJudgeConfig
) -> tuple[list[int] | None, list[int], list[int] | None]:
    """Per judgement: reasoning tokens (None without a tokenizer), reasoning words, and tokens of
    everything the judge wrote (reasoning + answer: a looping judge without a verdict line has no
    separated reasoning but a long answer)."""
    texts = [j.reasoning or "" for j in judgements]
    words = [len(t.split()) for t in texts]
    name, revision, trust = None, None, False
    if spec.backend.kind == "hf":
        name, revision, trust = spec.backend.model.name, spec.backend.model.revision, spec.backend.model.trust_remote_code
    elif config.reasoning_tokenizer is not None:
        name = config.reasoning_tokenizer
    if name is None:
        return None, words, None
    from judgelab.models.tokens import count_tokens, load_tokenizer

    tokenizer = load_tokenizer(name, revision, trust)
    answers = count_tokens(tokenizer, [j.raw_text or "" for j in judgements])
    reasoning = count_tokens(tokenizer, texts)
    return reasoning, words, [r + a for r, a in zip(reasoning, answers)]


__all__ = [
    "ITEMS_FILE",
    "JUDGE_EVAL_SCHEMA",
    "MARKDOWN_FILE",
    "RESULT_FILE",
    "BootstrapSpec",
    "EvalJudgeConfig",
    "EvalJudgeEntry",
    "EvalJudgeResult",
    "run_eval_judge",
]
