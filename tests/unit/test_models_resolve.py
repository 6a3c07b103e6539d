"""``resolve_model`` rules: alias -> prepared folder (prepared on demand), local dir, hub id, errors."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from judgelab.errors import ConfigError
from judgelab.models import registry
from judgelab.models.registry import ModelRecipe, prepare_model
from judgelab.models.resolve import is_hub_id, resolve_model

FAKE = "fake-model"


class CountingBuilder:
    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, out_dir: Path) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        (out_dir / "config.json").write_text("{}")
        return {}


@pytest.fixture
def builder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CountingBuilder:
    monkeypatch.setenv("JUDGELAB_HOME", str(tmp_path / "home"))
    b = CountingBuilder()
    monkeypatch.setitem(registry.MODEL_RECIPES, FAKE, ModelRecipe(FAKE, "fake", b))
    return b


def test_prepared_alias_resolves_to_its_folder(builder: CountingBuilder, tmp_path: Path) -> None:
    path = prepare_model(FAKE)
    assert builder.calls == 1
    assert resolve_model(FAKE) == str(path)
    assert builder.calls == 1


def test_known_unprepared_alias_is_prepared_on_demand(builder: CountingBuilder, tmp_path: Path) -> None:
    resolved = resolve_model(FAKE)
    assert builder.calls == 1
    assert resolved == str((tmp_path / "home" / "models" / FAKE).resolve())
    assert (Path(resolved) / registry.MARKER_NAME).is_file()


def test_alias_wins_over_a_same_named_local_dir(
    builder: CountingBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / FAKE).mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_model(FAKE) == str((tmp_path / "home" / "models" / FAKE).resolve())


def test_local_dir_resolves_to_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "ckpt" / "step-10"
    d.mkdir(parents=True)
    assert resolve_model(str(d)) == str(d.resolve())
    monkeypatch.chdir(tmp_path)
    assert resolve_model("ckpt/step-10") == str(d.resolve())  # an existing dir wins over "org/name"
    assert resolve_model("./ckpt/step-10") == str(d.resolve())


def test_home_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m").mkdir()
    assert resolve_model("~/m") == str((tmp_path / "m").resolve())


@pytest.mark.parametrize(
    "name", ["HuggingFaceTB/SmolLM2-135M-Instruct", "Qwen/Qwen3-0.6B", "org/name.v1", "a/b_c-d"]
)
def test_hub_ids_pass_through_unchanged(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no such local folder
    assert resolve_model(name) == name
    assert resolve_model(name, revision="main") == name


def test_revision_with_alias_or_local_dir_is_an_error(builder: CountingBuilder, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="revision"):
        resolve_model(FAKE, revision="abc")
    with pytest.raises(ConfigError, match="revision"):
        resolve_model(str(tmp_path), revision="abc")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("not-an-alias", "not a known alias"),
        ("gpt 4", "not a known alias"),
        ("./missing-folder", "does not exist"),
        ("/definitely/not/here", "does not exist"),
        ("a/b/c", "does not exist"),
        ("org/../etc", "does not exist"),
        ("-org/name", "does not exist"),
        ("org/na--me", "does not exist"),
    ],
)
def test_invalid_names_are_config_errors(
    name: str, fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        resolve_model(name)
    assert fragment in e.value.message
    assert e.value.hint


def test_a_file_is_not_a_model_folder(tmp_path: Path) -> None:
    f = tmp_path / "model.gguf"
    f.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="is a file"):
        resolve_model(str(f))


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("org/name", True),
        ("Org-1/Name_2.3", True),
        ("name", False),
        ("org/", False),
        ("/name", False),
        ("org/name/extra", False),
        (".org/name", False),
        ("org/name.", False),
        ("org/a..b", False),
        ("org/a--b", False),
        ("org/" + "x" * 97, False),
    ],
)
def test_is_hub_id(name: str, ok: bool) -> None:
    assert is_hub_id(name) is ok
