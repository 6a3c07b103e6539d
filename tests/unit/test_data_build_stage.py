import json

import pytest
from pydantic import ValidationError

from judgelab.data.records import load_records
from judgelab.data.sources import TableSourceConfig
from judgelab.data.splits import SPLIT_NAMES, SplitSizes
from judgelab.data.world import parse_instruction
from judgelab.errors import RunDirError
from judgelab.stages.data_build import DataBuildConfig, load_split, run_data_build, split_path
from judgelab.stages.registry import get_stage

SMALL = SplitSizes(judge_train=60, judge_eval=20, policy_train=60, policy_test=20)


def _files(run_dir):
    return {n: split_path(run_dir, n).read_text() for n in SPLIT_NAMES}


def test_synthetic_build_writes_splits_and_card(tmp_path):
    res = run_data_build(DataBuildConfig(splits=SMALL, seed=5), tmp_path / "run")
    assert res.counts == {"judge_train": 60, "judge_eval": 20, "policy_train": 60, "policy_test": 20}
    splits = {n: load_split(res.run_dir, n) for n in SPLIT_NAMES}
    hashes = {n: {r.prompt_hash for r in v} for n, v in splits.items()}
    for a in SPLIT_NAMES:
        for b in SPLIT_NAMES:
            if a < b:
                assert not hashes[a] & hashes[b]
    fams = {n: {r.meta["family"] for r in v} for n, v in splits.items()}
    assert not (fams["judge_train"] | fams["policy_train"]) & (fams["judge_eval"] | fams["policy_test"])
    for r in splits["judge_eval"]:
        assert parse_instruction(r.prompt).render() == r.prompt
    card = json.loads((res.run_dir / "data_card.json").read_text())
    assert card == res.card and set(card["prompt_overlap"].values()) == {0}
    assert card["family_overlap_train_heldout"] == 0
    assert card["build"]["max_words"] == 55 and card["build"]["world"] == "easy"
    assert sum(card["splits"]["judge_train"]["constraints_per_prompt"].values()) == 60
    md = (res.run_dir / "data_card.md").read_text()
    assert "| records | 60 | 20 | 60 | 20 |" in md and "(disjoint)" in md
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["outputs"]["data/judge_train.jsonl"] == {"records": 60}


def test_reproducible_by_seed(tmp_path):
    a = run_data_build(DataBuildConfig(splits=SMALL, seed=1), tmp_path / "a")
    b = run_data_build(DataBuildConfig(splits=SMALL, seed=1), tmp_path / "b")
    c = run_data_build(DataBuildConfig(splits=SMALL, seed=2), tmp_path / "c")
    assert _files(a.run_dir) == _files(b.run_dir)
    assert _files(a.run_dir)["policy_test"] != _files(c.run_dir)["policy_test"]


def test_completed_run_is_not_rebuilt_and_other_config_refused(tmp_path):
    cfg = DataBuildConfig(splits=SMALL)
    first = run_data_build(cfg, tmp_path / "run")
    before = split_path(first.run_dir, "judge_train").stat().st_mtime_ns
    again = run_data_build(cfg, tmp_path / "run")
    assert again.counts == first.counts
    assert split_path(first.run_dir, "judge_train").stat().st_mtime_ns == before
    with pytest.raises(RunDirError):
        run_data_build(DataBuildConfig(splits=SMALL, seed=9), tmp_path / "run")


def test_table_source_build(tmp_path):
    rows = [{"prompt": f"Question {i // 2}?", "r": f"answer {i}"} for i in range(60)]  # 30 prompts × 2
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataBuildConfig(
        sources=[TableSourceConfig(path=str(src), columns={"prompt": "prompt", "responses": ["r"]})],
        splits=SplitSizes(judge_train=20, judge_eval=4, policy_train=None, policy_test=3),
    )
    res = run_data_build(cfg, tmp_path / "run")
    assert res.counts == {"judge_train": 20, "judge_eval": 4, "policy_train": 30 - 2 - 3 - 10, "policy_test": 3}
    assert set(res.card["prompt_overlap"].values()) == {0}
    assert load_records(res.split_paths["judge_eval"])[0].responses


def test_config_rules():
    with pytest.raises(ValidationError, match="synthetic source must be the only source"):
        DataBuildConfig(sources=[{"kind": "synthetic"}, {"kind": "table", "path": "x.jsonl"}])
    with pytest.raises(ValidationError, match="no fixed size"):
        DataBuildConfig(splits={"judge_train": None})
    with pytest.raises(ValidationError):
        DataBuildConfig(sources=[{"kind": "synthetic", "wrold": "easy"}])
    cfg = DataBuildConfig.model_validate({"stage": "data_build", "sources": [{"kind": "synthetic", "world": "hard"}]})
    assert cfg.sources[0].world == "hard"
    assert get_stage("data_build").load_config_class() is DataBuildConfig
