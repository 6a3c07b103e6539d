"""Stage ``data_build`` (L4): sources → disjoint study splits + data card, in a run directory.

    judgelab data build -c data.yaml --run-dir runs/data

Outputs (``RUN_DIR/``): ``data/judge_train.jsonl``, ``data/judge_eval.jsonl``,
``data/policy_train.jsonl``, ``data/policy_test.jsonl`` (``Record`` JSONL), ``data_card.json``,
``data_card.md``, plus the run directory's ``config.yaml`` and ``manifest.json``. A completed run
is not rebuilt; rerunning after a crash starts the (cheap, deterministic) build over.

With the ``synthetic`` source (the default), prompts are generated to the split sizes: held-out
families are drawn first, then the held-out splits' prompts come from those families only and the
training splits' prompts from the others. Other sources are read, de-duplicated by id, then split.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from judgelab.config.stage import StageConfig
from judgelab.data.card import compute_data_card, render_data_card_md
from judgelab.data.records import Record, load_records, save_records
from judgelab.data.sources import SourceConfig, SyntheticSourceConfig, dedupe_ids, load_source
from judgelab.data.splits import (
    SPLIT_NAMES,
    HoldoutSpec,
    SplitSizes,
    assign_splits,
    partition_groups,
)
from judgelab.data.world.generate import family_ids, generate_prompts
from judgelab.errors import RunDirError
from judgelab.store.jsonl import write_json_atomic, write_text_atomic
from judgelab.store.rundir import RunDir

log = logging.getLogger(__name__)

STAGE = "data_build"
DATA_DIR = "data"
CARD_JSON = "data_card.json"
CARD_MD = "data_card.md"


class DataBuildConfig(StageConfig):
    """Which sources, how big each split, which families to hold out."""

    stage: Literal["data_build"] = "data_build"
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SyntheticSourceConfig()],
        min_length=1,
        description="read in order and concatenated; the synthetic world must be the only source",
    )
    splits: SplitSizes = Field(default_factory=SplitSizes)
    holdout: HoldoutSpec | None = Field(
        default_factory=HoldoutSpec,
        description="families kept out of training splits; applies when records carry meta[key] (the synthetic world does)",
    )

    @model_validator(mode="after")
    def _synthetic_alone(self) -> DataBuildConfig:
        synth = [s for s in self.sources if isinstance(s, SyntheticSourceConfig)]
        if synth and len(self.sources) > 1:
            raise ValueError("the synthetic source must be the only source; build other sources in a separate run")
        if synth:
            rest = [n for n in SPLIT_NAMES if self.splits.get(n) is None]
            if rest:
                raise ValueError(
                    f"splits.{rest[0]} is null ('the rest'), but the synthetic world has no fixed size; give it a number"
                )
        return self


@dataclass(frozen=True)
class DataBuildResult:
    run_dir: Path
    split_paths: dict[str, Path]
    counts: dict[str, int]
    card: dict[str, Any]


def split_path(run_dir: str | Path, split: str) -> Path:
    """Where a data build writes ``split`` (judge_train, judge_eval, policy_train, policy_test)."""
    return Path(run_dir) / DATA_DIR / f"{split}.jsonl"


def load_split(run_dir: str | Path, split: str) -> list[Record]:
    """Records of one split of a finished data build."""
    return load_records(split_path(run_dir, split))


def _synthetic_records(cfg: DataBuildConfig, world: SyntheticSourceConfig) -> tuple[list[Record], list[str] | None, dict[str, Any]]:
    sizes = {n: int(cfg.splits.get(n) or 0) for n in SPLIT_NAMES}
    fams = family_ids()
    info: dict[str, Any] = {
        "world": world.world,
        "response_token_budget": world.response_token_budget,
        "max_words": world.max_words,
        "min_words": world.min_words,
        "families": len(fams),
    }
    if cfg.holdout is None:
        return generate_prompts(world, sum(sizes.values()), fams, cfg.seed), None, info
    train_f, test_f = partition_groups(fams, cfg.holdout.fraction, cfg.seed)
    n_test = sum(sizes[n] for n in cfg.holdout.splits)
    n_train = sum(sizes.values()) - n_test
    test = generate_prompts(world, n_test, test_f, f"{cfg.seed}:heldout")
    train = generate_prompts(
        world, n_train, train_f, f"{cfg.seed}:train", exclude_hashes={r.prompt_hash for r in test}
    )
    info["heldout_families"] = test_f
    return test + train, test_f, info


def _read_sources(cfg: DataBuildConfig) -> tuple[list[Record], dict[str, Any]]:
    records: list[Record] = []
    info: dict[str, Any] = {"sources": {}}
    for src in cfg.sources:
        loaded = load_source(src, seed=cfg.seed)
        info["sources"][loaded.name] = {"records": len(loaded.records), "skipped": dict(loaded.skipped)}
        log.info("source %s: %d records (skipped %s)", loaded.name, len(loaded.records), dict(loaded.skipped) or "none")
        records.extend(loaded.records)
    records, dropped = dedupe_ids(records)
    info["duplicate_ids_dropped"] = dropped
    return records, info


def _result(run: RunDir) -> DataBuildResult:
    paths = {n: split_path(run.path, n) for n in SPLIT_NAMES}
    card = json.loads((run.path / CARD_JSON).read_text(encoding="utf-8"))
    counts = {n: card["splits"][n]["records"] for n in SPLIT_NAMES}
    return DataBuildResult(run.path, paths, counts, card)


def run_data_build(cfg: DataBuildConfig, run_dir: str | Path) -> DataBuildResult:
    """Build the splits and the data card into ``run_dir`` (see the module docstring)."""
    if (Path(run_dir) / "manifest.json").exists():
        prev = RunDir.load(run_dir)
        if prev.completed_run_of(STAGE, cfg):
            log.info("data build in %s is already complete; nothing to do", prev.path)
            try:
                return _result(prev)
            except (OSError, KeyError, ValueError) as e:
                raise RunDirError(
                    f"{prev.path} is marked complete but its outputs are unreadable: {e}", "delete it and rebuild"
                ) from e
    run = RunDir.open(run_dir, cfg, stage=STAGE, seed=cfg.seed)
    try:
        synth = [s for s in cfg.sources if isinstance(s, SyntheticSourceConfig)]
        if synth:
            records, test_groups, info = _synthetic_records(cfg, synth[0])
        else:
            records, info = _read_sources(cfg)
            test_groups = None
        result = assign_splits(records, cfg.splits, cfg.seed, holdout=cfg.holdout, test_groups=test_groups)

        paths: dict[str, Path] = {}
        for name in SPLIT_NAMES:
            paths[name] = split_path(run.path, name)
            save_records(paths[name], result.splits[name])
        build = {"seed": cfg.seed, **info, "unused_records": result.unused_records}
        if result.test_groups:
            build["heldout_families"] = result.test_groups
        card = compute_data_card(
            result.splits, build=build, heldout_splits=cfg.holdout.splits if cfg.holdout else ()
        )
        write_json_atomic(run.file(CARD_JSON), card)
        write_text_atomic(run.file(CARD_MD), render_data_card_md(card))
        counts = {n: len(result.splits[n]) for n in SPLIT_NAMES}
        for name in SPLIT_NAMES:
            run.record_output(f"{DATA_DIR}/{name}.jsonl", records=counts[name])
        run.set_status("completed")
    except KeyboardInterrupt:
        run.set_status("interrupted")
        raise
    except BaseException:
        run.set_status("failed")
        raise
    log.info("data build: %s", ", ".join(f"{n} {c}" for n, c in counts.items()))
    return DataBuildResult(run.path, paths, counts, card)


__all__ = [
    "CARD_JSON",
    "CARD_MD",
    "DataBuildConfig",
    "DataBuildResult",
    "load_split",
    "run_data_build",
    "split_path",
]
