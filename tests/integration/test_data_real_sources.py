"""Sources on the real shared files (../shared/data), the real `datasets` loader, and the CLI."""

import json
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from judgelab.cli import main
from judgelab.data.records import load_records
from judgelab.data.sources import (
    AlpacaEvalSourceConfig,
    ArenaHardSourceConfig,
    TuluPreferenceSourceConfig,
    load_alpacaeval_source,
    load_arena_hard_source,
    load_tulu_source,
)
from judgelab.data.splits import SPLIT_NAMES

pytestmark = pytest.mark.integration

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ALPACA = SHARED / "alpacaeval-cot"
ARENA = SHARED / "arena-hard-v2.0"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")


def _raw(path):
    # split on "\n" only: the texts contain U+2028, which str.splitlines() would also split on
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


@needs_shared
def test_alpacaeval_all_files_match_a_plain_reading():
    src = load_alpacaeval_source(AlpacaEvalSourceConfig(paths=[str(ALPACA)]))
    raw = [row for f in sorted(ALPACA.glob("*.jsonl")) for row in _raw(f)]
    usable = [r for r in raw if r["preference"] is not None]
    assert len(src.records) == len(usable) and src.skipped["no_verdict"] == len(raw) - len(usable)
    want = Counter("A" if r["preference"] == 1 else "B" if r["preference"] == 2 else "tie" for r in usable)
    assert Counter(r.labels.preference for r in src.records) == want
    assert len({r.prompt for r in src.records}) == 805
    by_id = {(r.prompt, r.responses[0], r.responses[1]): r for r in src.records}
    for row in usable[:200]:
        rec = by_id[(row["instruction"], row["output_1"], row["output_2"])]
        assert rec.meta["generator_2"] == row["generator_2"] and rec.labels.annotator == row["annotator"]
    # Where the judge states the ranking outright, the relabelled text names the preferred side.
    explicit = [r for r in src.records if r.meta.get("explanation_relabel") == "explicit"]
    assert len(explicit) > 100
    ok = sum(
        bool(re.search(rf"response {r.labels.preference} (is|was) ranked", r.labels.reasoning, re.IGNORECASE))
        for r in explicit
    )
    assert ok == len(explicit)


@needs_shared
def test_arena_hard_questions_and_baseline_answers():
    src = load_arena_hard_source(ArenaHardSourceConfig(
        questions=str(ARENA / "question.jsonl"), answers=str(ARENA / "model_answer" / "o3-mini-2025-01-31.jsonl")))
    qs = _raw(ARENA / "question.jsonl")
    ans = {a["uid"]: a for a in _raw(ARENA / "model_answer" / "o3-mini-2025-01-31.jsonl")}
    assert len(src.records) == len(qs) == 750
    assert Counter(r.meta["category"] for r in src.records) == Counter(q["category"] for q in qs)
    for rec, q in zip(src.records, qs):
        assert rec.prompt == q["prompt"] and rec.meta["uid"] == q["uid"]
        content = ans[q["uid"]]["messages"][-1]["content"]
        assert rec.responses == [content["answer"] if isinstance(content, dict) else content]
    creative = load_arena_hard_source(ArenaHardSourceConfig(questions=str(ARENA / "question.jsonl"), categories=["creative_writing"]))
    assert len(creative.records) == 250


def test_tulu_through_the_real_datasets_loader(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder = tmp_path / "tulu-mixture" / "data"
    folder.mkdir(parents=True)
    rows = []
    for i in range(20):
        src = "allenai/tulu-3-sft-reused-off-policy" if i % 2 else "allenai/tulu-3-sft-reused-on-policy-8b"
        user = {"content": f"q{i}", "role": "user"}
        rows.append({"id": f"id{i}", "prompt": f"q{i}", "source": src,
                     "chosen": [user, {"content": f"yes {i}", "role": "assistant"}],
                     "rejected": [user, {"content": f"no {i}", "role": "assistant"}]})
    pq.write_table(pa.Table.from_pylist(rows), folder / "train-00000-of-00001.parquet")
    cfg = TuluPreferenceSourceConfig(hf_id=str(tmp_path / "tulu-mixture"))
    loaded = load_tulu_source(cfg, seed=0)
    assert len(loaded.records) == 10 and loaded.skipped == {"source_not_included": 10}
    for r in loaded.records:
        i = r.id.removeprefix("tulu3-id")
        assert r.responses["AB".index(r.labels.preference)] == f"yes {i}"
    same_from_file = load_tulu_source(TuluPreferenceSourceConfig(path=str(folder)), seed=0)
    assert same_from_file.records == loaded.records


@needs_shared
def test_cli_build_from_real_files(tmp_path):
    cfg = {
        "stage": "data_build",
        "seed": 0,
        "sources": [
            {"kind": "alpacaeval", "paths": [str(ALPACA / "gpt4.jsonl"), str(ALPACA / "alpaca-7b.jsonl")]},
            {"kind": "arena_hard", "questions": str(ARENA / "question.jsonl")},
        ],
        "splits": {"judge_train": 1000, "judge_eval": 200, "policy_train": None, "policy_test": 100},
    }
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["data", "build", "-c", str(path), "--run-dir", str(tmp_path / "run")]) == 0
    card = json.loads((tmp_path / "run" / "data_card.json").read_text())
    assert set(card["prompt_overlap"].values()) == {0}
    splits = {n: load_records(tmp_path / "run" / "data" / f"{n}.jsonl") for n in SPLIT_NAMES}
    assert len(splits["judge_train"]) == 1000 and len(splits["judge_eval"]) == 200 and len(splits["policy_test"]) == 100
    # every AlpacaEval instruction's two judged pairs sit in one split
    where = {}
    for n, recs in splits.items():
        for r in recs:
            assert where.setdefault(r.prompt_hash, n) == n
    total_prompts = 805 + 750
    assert sum(card["splits"][n]["unique_prompts"] for n in SPLIT_NAMES) <= total_prompts
    labels = card["splits"]["judge_train"]["labels"]
    assert labels["annotators"] == {"alpaca_eval_cot_gpt4_turbo_fn": labels["records"]}
    assert labels["with_reasoning"] >= labels["records"] - 10  # a few judgements have no explanation


def test_cli_build_5k_synthetic_world(tmp_path):
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump({"splits": {"judge_train": 2000, "judge_eval": 500, "policy_train": 2000, "policy_test": 500}}))
    assert main(["data", "build", "-c", str(path), "--run-dir", str(tmp_path / "run")]) == 0
    card = json.loads((tmp_path / "run" / "data_card.json").read_text())
    assert {n: card["splits"][n]["records"] for n in SPLIT_NAMES} == {
        "judge_train": 2000, "judge_eval": 500, "policy_train": 2000, "policy_test": 500}
    assert set(card["prompt_overlap"].values()) == {0} and card["family_overlap_train_heldout"] == 0
    # a rerun with a different seed override into a new folder gives different prompts
    assert main(["data", "build", "-c", str(path), "--run-dir", str(tmp_path / "run2"), "seed=1"]) == 0
    a = (tmp_path / "run" / "data" / "policy_test.jsonl").read_text()
    b = (tmp_path / "run2" / "data" / "policy_test.jsonl").read_text()
    assert a != b
