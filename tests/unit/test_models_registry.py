"""Model provisioning rules with a fake, cheap recipe: marker, idempotence, crash safety, locking."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from judgelab.errors import ConfigError
from judgelab.models import registry
from judgelab.models.registry import (
    MARKER_NAME,
    ModelRecipe,
    cli_list,
    judgelab_home,
    list_prepared,
    prepare_model,
    prepared_path,
)

FAKE = "fake-model"


class FakeBuilder:
    """Writes two files, slowly if asked, and counts its calls (thread-safe)."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, out_dir: Path) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        (out_dir / "config.json").write_text('{"model_type": "fake"}')
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("builder crashed")
        (out_dir / "model.safetensors").write_bytes(b"x" * 1000)
        return {"source": {"kind": "fake", "sha256": "0" * 64}}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBuilder:
    builder = FakeBuilder()
    monkeypatch.setitem(registry.MODEL_RECIPES, FAKE, ModelRecipe(FAKE, "a fake model", builder))
    return builder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUDGELAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_home_from_env_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUDGELAB_HOME", str(tmp_path / "x"))
    assert judgelab_home() == (tmp_path / "x").resolve()
    monkeypatch.delenv("JUDGELAB_HOME")
    assert judgelab_home() == (Path.home() / ".cache" / "judgelab").resolve()


def test_prepare_writes_marker_last_and_is_idempotent(home: Path, fake: FakeBuilder) -> None:
    path = prepare_model(FAKE)
    assert path == home.resolve() / "models" / FAKE
    marker = json.loads((path / MARKER_NAME).read_text())
    assert marker["alias"] == FAKE
    assert marker["source"]["kind"] == "fake"
    assert marker["schema_version"] == 1
    assert "transformers" in marker["versions"] or "judgelab" in marker["versions"]
    assert sorted(p.name for p in path.iterdir()) == ["config.json", MARKER_NAME, "model.safetensors"]
    assert fake.calls == 1
    assert prepare_model(FAKE) == path
    assert fake.calls == 1  # second call: marker found, nothing rebuilt
    assert json.loads((path / MARKER_NAME).read_text()) == marker
    # no temporary folders are left beside it
    assert sorted(p.name for p in path.parent.iterdir()) == [FAKE]


def test_force_rebuilds(home: Path, fake: FakeBuilder) -> None:
    prepare_model(FAKE)
    prepare_model(FAKE, force=True)
    assert fake.calls == 2
    assert prepared_path(FAKE) is not None


def test_half_written_folder_without_marker_is_replaced(home: Path, fake: FakeBuilder) -> None:
    final = home / "models" / FAKE
    final.mkdir(parents=True)
    (final / "config.json").write_text("truncated{")
    (final / "junk.bin").write_bytes(b"partial")
    assert prepared_path(FAKE) is None
    assert list_prepared() == []
    path = prepare_model(FAKE)
    assert fake.calls == 1
    assert not (path / "junk.bin").exists()
    assert (path / "config.json").read_text() == '{"model_type": "fake"}'
    assert (path / MARKER_NAME).is_file()


def test_marker_of_another_alias_or_corrupt_marker_means_not_prepared(
    home: Path, fake: FakeBuilder
) -> None:
    final = home / "models" / FAKE
    final.mkdir(parents=True)
    (final / MARKER_NAME).write_text(json.dumps({"alias": "something-else"}))
    assert prepared_path(FAKE) is None
    (final / MARKER_NAME).write_text("{not json")
    assert prepared_path(FAKE) is None
    prepare_model(FAKE)
    assert fake.calls == 1


def test_stale_temporary_folders_are_cleaned(home: Path, fake: FakeBuilder) -> None:
    stale = home / "models" / f".{FAKE}.tmp-999-deadbeef"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    prepare_model(FAKE)
    assert not stale.exists()


def test_failed_build_leaves_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builder = FakeBuilder(fail=True)
    monkeypatch.setitem(registry.MODEL_RECIPES, FAKE, ModelRecipe(FAKE, "fails", builder))
    with pytest.raises(RuntimeError, match="builder crashed"):
        prepare_model(FAKE)
    assert list((home / "models").iterdir()) == []


def test_failed_rebuild_keeps_the_prepared_folder(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = FakeBuilder()
    monkeypatch.setitem(registry.MODEL_RECIPES, FAKE, ModelRecipe(FAKE, "ok", good))
    path = prepare_model(FAKE)
    monkeypatch.setitem(registry.MODEL_RECIPES, FAKE, ModelRecipe(FAKE, "fails", FakeBuilder(fail=True)))
    with pytest.raises(RuntimeError):
        prepare_model(FAKE, force=True)
    assert prepared_path(FAKE) == path  # the old complete folder was not touched


def test_concurrent_prepares_in_threads_build_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builder = FakeBuilder(delay_s=0.3)
    monkeypatch.setitem(registry.MODEL_RECIPES, FAKE, ModelRecipe(FAKE, "slow", builder))
    results: list[Path] = []
    errors: list[Exception] = []

    def run() -> None:
        try:
            results.append(prepare_model(FAKE))
        except (OSError, RuntimeError, ValueError) as e:  # asserted empty below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert builder.calls == 1
    assert len(set(results)) == 1
    assert (results[0] / MARKER_NAME).is_file()


def _prepare_in_child(home: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    builder = FakeBuilder(delay_s=0.3)
    registry.MODEL_RECIPES[FAKE] = ModelRecipe(FAKE, "slow", builder)
    prepare_model(FAKE, home=Path(home))
    out.put(builder.calls)


def test_concurrent_prepares_in_processes_build_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_prepare_in_child, args=(str(tmp_path), q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    calls = sorted(q.get(timeout=5) for _ in procs)
    assert calls == [0, 0, 1]  # exactly one process built; the others found the marker
    assert (tmp_path / "models" / FAKE / MARKER_NAME).is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == [FAKE]


def test_unknown_alias_lists_known_ones(home: Path) -> None:
    with pytest.raises(ConfigError) as e:
        prepare_model("no-such-model")
    assert "no-such-model" in e.value.message
    assert e.value.hint is not None and "smollm2-135m-instruct" in e.value.hint


def test_list_prepared_and_cli_list(home: Path, fake: FakeBuilder) -> None:
    (home / "models" / "stray").mkdir(parents=True)  # no marker: ignored
    assert list_prepared() == []
    prepare_model(FAKE)
    (prepared,) = list_prepared()
    assert prepared.alias == FAKE
    assert prepared.path == home.resolve() / "models" / FAKE
    expected_size = sum(os.path.getsize(p) for p in prepared.path.iterdir())
    assert prepared.size_bytes == expected_size
    rows = {r["alias"]: r for r in cli_list()}
    assert rows[FAKE]["prepared"] is True and rows[FAKE]["path"] == str(prepared.path)
    assert rows["smollm2-135m-instruct"]["prepared"] is False


def test_import_registry_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, judgelab.models, judgelab.models.registry, judgelab.models.resolve;"
        "import judgelab.backends.hf;"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
