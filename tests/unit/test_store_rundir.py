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


# ---------------------------------------------------------------------------- judgelab upgrades
class Inner(BaseModel):
    lr: float = 1e-3
    steps: int = 4


class OldCfg(BaseModel):
    name: str = "x"
    inner: Inner = Inner()
    items: list[Inner] = []


class Inner2(Inner):
    weight: float = 0.0  # a field added to judgelab later


class NewCfg(BaseModel):
    name: str = "x"
    inner: Inner2 = Inner2()
    items: list[Inner2] = []
    extra: bool = False  # another added field


def _old_run(tmp_path, **kw):
    run = RunDir.open(tmp_path / "r", OldCfg(**kw), stage="demo")
    run.set_status("completed")
    return tmp_path / "r"


def test_fields_added_at_their_defaults_keep_a_run_resumable(tmp_path):
    path = _old_run(tmp_path, inner=Inner(lr=0.5), items=[Inner(steps=2)])
    new = NewCfg(inner=Inner2(lr=0.5), items=[Inner2(steps=2)])
    assert config_hash(new) != json.loads((path / "manifest.json").read_text())["config_hash"]
    assert RunDir.load(path).holds(new)
    run = RunDir.open(path, new, stage="demo")  # a resume, not an error
    m = json.loads((path / "manifest.json").read_text())
    assert m["config_hash"] == config_hash(new) and m["resumed"] == 1
    [mig] = m["config_migrations"]
    assert sorted(mig["added_default_fields"]) == ["extra", "inner.weight", "items[0].weight"]
    assert "weight: 0.0" in (path / "config.yaml").read_text()
    assert run.holds(new)


@pytest.mark.parametrize("new", [
    NewCfg(inner=Inner2(lr=0.5, weight=2.0)),  # an added field set to a non-default value
    NewCfg(inner=Inner2(lr=0.25)),              # a changed value
    NewCfg(inner=Inner2(lr=0.5), extra=True),   # an added top-level field not at its default
    NewCfg(inner=Inner2(lr=0.5), items=[Inner2()]),  # a list that grew
])
def test_anything_else_is_still_a_different_config(tmp_path, new):
    path = _old_run(tmp_path, inner=Inner(lr=0.5))
    assert not RunDir.load(path).holds(new)
    with pytest.raises(RunDirError, match="different config"):
        RunDir.open(path, new, stage="demo")


def test_a_removed_field_is_a_different_config(tmp_path):
    path = _old_run(tmp_path)
    assert not RunDir.load(path).holds(Cfg(name="x"))  # OldCfg's inner / items are gone


def test_completed_run_of_needs_stage_status_and_config(tmp_path):
    path = _old_run(tmp_path, inner=Inner(lr=0.5))
    run = RunDir.load(path)
    assert run.completed_run_of("demo", NewCfg(inner=Inner2(lr=0.5)))  # added defaults only
    assert not run.completed_run_of("other", NewCfg(inner=Inner2(lr=0.5)))
    assert not run.completed_run_of("demo", NewCfg(inner=Inner2(lr=0.25)))
    run.set_status("interrupted")
    assert not run.completed_run_of("demo", NewCfg(inner=Inner2(lr=0.5)))
