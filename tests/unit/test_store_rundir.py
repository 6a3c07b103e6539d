import json

import pytest
from pydantic import BaseModel

from judgelab.errors import RunDirError
from judgelab.store.rundir import RunDir, config_hash, package_versions


class Cfg(BaseModel):
    a: int = 1
    name: str = "x"


def test_create_writes_config_and_manifest(tmp_path):
    run = RunDir.open(tmp_path / "r", Cfg(a=2), stage="demo", seed=7)
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert m["stage"] == "demo" and m["seed"] == 7 and m["status"] == "running"
    assert m["config_hash"] == config_hash(Cfg(a=2))
    assert m["versions"]["pydantic"]
    assert "a: 2" in (tmp_path / "r" / "config.yaml").read_text()
    run.set_status("completed")
    assert RunDir.load(tmp_path / "r").completed


def test_reopen_same_config_resumes(tmp_path):
    RunDir.open(tmp_path / "r", Cfg(), stage="demo")
    run = RunDir.open(tmp_path / "r", Cfg(), stage="demo")
    assert run.manifest["resumed"] == 1


def test_reopen_different_config_refused(tmp_path):
    RunDir.open(tmp_path / "r", Cfg(), stage="demo")
    with pytest.raises(RunDirError, match="different config"):
        RunDir.open(tmp_path / "r", Cfg(a=3), stage="demo")
    with pytest.raises(RunDirError):
        RunDir.open(tmp_path / "r", Cfg(), stage="other")


def test_nonempty_foreign_dir_refused(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "stuff.txt").write_text("x")
    with pytest.raises(RunDirError, match="not empty"):
        RunDir.open(tmp_path / "r", Cfg(), stage="demo")


def test_config_hash_is_order_independent():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_package_versions_has_none_for_missing():
    v = package_versions()
    assert "torch" in v and "vllm" in v


def test_guard_marks_failed_and_interrupted(tmp_path):
    run = RunDir.open(tmp_path / "r", Cfg(), stage="demo")
    with pytest.raises(ValueError):
        with run.guard():
            raise ValueError("x")
    assert RunDir.load(tmp_path / "r").status == "failed"
    run = RunDir.open(tmp_path / "r", Cfg(), stage="demo")
    with pytest.raises(KeyboardInterrupt):
        with run.guard():
            raise KeyboardInterrupt
    assert RunDir.load(tmp_path / "r").status == "interrupted"
