"""Run directories (L1): every stage writes into one, so every number can be recomputed offline.

Layout::

    RUN_DIR/
      config.yaml        the resolved config (defaults filled in), exactly what ran
      manifest.json      versions, git sha, seed, config hash, status, timings, template hashes
      *.jsonl            schema-versioned records written by the stage

``RunDir.open`` refuses a directory that holds a run of a *different* config (same stage + hash
is a resume), so results from two configs never mix in one folder.

One exception keeps runs resumable across judgelab upgrades: when the stored ``config.yaml``
differs from the new config *only* by fields this version added since (absent from the stored
file, at their schema default in the new config), it is the same experiment. ``RunDir.holds``
accepts it, and ``RunDir.open`` records the new hash with the added fields listed under
``config_migrations`` in the manifest. A changed value, a removed field, or a new field set to
anything but its default is still a different config. (Fields of free-form dicts, such as a
study's stage bodies, have no schema default and never qualify.)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from judgelab.errors import RunDirError
from judgelab.store.jsonl import write_json_atomic, write_text_atomic

MANIFEST_SCHEMA = "judgelab.manifest/v1"
Status = Literal["running", "completed", "failed", "interrupted"]

_VERSIONED_PACKAGES = (
    "judgelab",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "openai",
    "pydantic",
    "vllm",
    "llama_cpp_python",
)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that can move results (None = not installed)."""
    out: dict[str, str | None] = {}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_sha() -> str | None:
    """The commit of the judgelab checkout this code runs from, with '-dirty' if modified; None if not a checkout."""
    src = Path(__file__).resolve().parents[3]
    if not (src / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def config_hash(config: BaseModel | dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a (resolved) config."""
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def added_default_fields(stored: Any, config: Any, path: str = "") -> list[str] | None:
    """The dotted paths of fields present in ``config`` but absent from the ``stored`` config
    dict, each at its schema default; None when anything else differs (see the module docstring)."""
    if isinstance(config, BaseModel):
        if not isinstance(stored, dict):
            return None
        fields = type(config).model_fields
        if set(stored) - set(fields):
            return None  # a field was removed or renamed
        added: list[str] = []
        present: list[tuple[Any, Any, str]] = []
        for name, info in fields.items():
            where = f"{path}.{name}" if path else name
            value = getattr(config, name)
            if name in stored:
                present.append((stored[name], value, where))
            elif info.is_required() or (
                to_jsonable_python(info.get_default(call_default_factory=True)) != to_jsonable_python(value)
            ):
                return None
            else:
                added.append(where)
        rest = _added_in_all(present)
        return None if rest is None else added + rest
    if isinstance(config, (list, tuple)):
        if not isinstance(stored, list) or len(stored) != len(config):
            return None
        return _added_in_all([(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(stored, config))])
    if isinstance(config, dict) and any(isinstance(v, BaseModel) for v in config.values()):
        if not isinstance(stored, dict) or set(stored) != set(config):
            return None
        return _added_in_all([(stored[k], v, f"{path}.{k}") for k, v in config.items()])
    return [] if _canonical(stored) == _canonical(to_jsonable_python(config)) else None


def _added_in_all(pairs: list[tuple[Any, Any, str]]) -> list[str] | None:
    """``added_default_fields`` over (stored, config, path) pairs; None if any pair differs otherwise."""
    out: list[str] = []
    for stored, config, where in pairs:
        sub = added_default_fields(stored, config, where)
        if sub is None:
            return None
        out += sub
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """A stage's output folder with its resolved config and manifest."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    # ------------------------------------------------------------------ open / create
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        config: BaseModel,
        *,
        stage: str,
        seed: int | None = None,
    ) -> RunDir:
        """Create ``path`` for a new run, or reopen it to resume the same stage + config.

        Raises ``RunDirError`` when the folder holds a different stage or config.
        """
        path = Path(path)
        chash = config_hash(config)
        mpath = path / "manifest.json"
        if mpath.exists():
            try:
                manifest = json.loads(mpath.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise RunDirError(
                    f"{mpath} is not valid JSON", "delete the run directory or pick another one"
                ) from e
            if manifest.get("stage") == stage and manifest.get("config_hash") != chash:
                added = cls(path, manifest)._added_fields(config)
                if added:  # the same experiment; fields added to judgelab since, at their defaults
                    manifest.setdefault("config_migrations", []).append(
                        {"from_hash": manifest.get("config_hash"), "added_default_fields": added, "at": _now()}
                    )
                    manifest["config_hash"] = chash
                    write_text_atomic(
                        path / "config.yaml",
                        yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
                    )
            if manifest.get("stage") != stage or manifest.get("config_hash") != chash:
                raise RunDirError(
                    f"{path} holds a run of stage {manifest.get('stage')!r} with a different config "
                    f"(hash {str(manifest.get('config_hash'))[:12]} ≠ {chash[:12]})",
                    "use a new --run-dir, or delete the old one to start over",
                )
            manifest["resumed"] = int(manifest.get("resumed", 0)) + 1
            run = cls(path, manifest)
            run.set_status("running")
            return run
        path.mkdir(parents=True, exist_ok=True)
        if any(p for p in path.iterdir() if not p.name.startswith(".")):
            raise RunDirError(
                f"{path} is not empty and has no manifest.json",
                "point --run-dir at an empty or new folder",
            )
        write_text_atomic(
            path / "config.yaml",
            yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
        )
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "stage": stage,
            "config_hash": chash,
            "seed": seed,
            "status": "running",
            "created": _now(),
            "updated": _now(),
            "resumed": 0,
            "git_sha": git_sha(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "versions": package_versions(),
            "template_hashes": {},
            "outputs": {},
        }
        run = cls(path, manifest)
        run.save_manifest()
        return run

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunDir:
        """Open an existing run read-only (for reports and re-scoring)."""
        path = Path(path)
        mpath = path / "manifest.json"
        if not mpath.exists():
            raise RunDirError(f"{path} has no manifest.json", "is this a judgelab run directory?")
        return cls(path, json.loads(mpath.read_text(encoding="utf-8")))

    def completed_run_of(self, stage: str, config: BaseModel) -> bool:
        """True when this is a completed run of ``stage`` made with ``config`` (``holds``)."""
        return self.manifest.get("stage") == stage and self.completed and self.holds(config)

    def holds(self, config: BaseModel) -> bool:
        """True when this run was made with ``config``: the same hash, or a stored config that lacks
        only fields added to judgelab since, each at its default (see the module docstring)."""
        if self.manifest.get("config_hash") == config_hash(config):
            return True
        return bool(self._added_fields(config))

    def _added_fields(self, config: BaseModel) -> list[str] | None:
        try:
            stored = self.config_dict()
        except (OSError, yaml.YAMLError):
            return None
        return added_default_fields(stored, config)

    # ------------------------------------------------------------------ manifest
    def save_manifest(self) -> None:
        self.manifest["updated"] = _now()
        write_json_atomic(self.path / "manifest.json", self.manifest)

    def set_status(self, status: Status, **extra: Any) -> None:
        self.manifest["status"] = status
        if status in ("completed", "failed", "interrupted"):
            self.manifest["finished"] = _now()
        self.manifest.update(extra)
        self.save_manifest()

    def record_template(self, name: str, sha256: str) -> None:
        self.manifest.setdefault("template_hashes", {})[name] = sha256
        self.save_manifest()

    def record_output(self, name: str, **info: Any) -> None:
        self.manifest.setdefault("outputs", {})[name] = info
        self.save_manifest()

    @contextmanager
    def guard(self) -> Iterator[RunDir]:
        """Mark the run ``failed`` / ``interrupted`` if the body raises (then re-raise).

        The body marks success itself with ``set_status("completed", ...)``.
        """
        try:
            yield self
        except KeyboardInterrupt:
            self.set_status("interrupted")
            raise
        except BaseException:
            self.set_status("failed")
            raise

    @property
    def status(self) -> str:
        return str(self.manifest.get("status"))

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def file(self, name: str) -> Path:
        return self.path / name

    def config_dict(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / "config.yaml").read_text(encoding="utf-8"))


__all__ = ["MANIFEST_SCHEMA", "RunDir", "added_default_fields", "config_hash", "git_sha", "package_versions"]
