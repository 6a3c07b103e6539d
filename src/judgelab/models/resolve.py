"""Turn a model name from a config into something ``from_pretrained`` can load.

Rules, in order (first match wins):

1. a known alias (``judgelab models list``) -> its prepared folder; an alias that is known but not
   yet prepared is prepared now (a local operation: no download);
2. an existing local directory -> its absolute path;
3. a hub id ``org/name`` -> returned unchanged, so ``from_pretrained`` takes the real hub code path
   (it fails offline; the loader turns that failure into a ``BackendError`` with a hint);
4. anything else -> ``ConfigError``: a path-looking name that does not exist, or a bare name that
   is neither an alias nor a hub id.

``revision`` only means something for hub ids; given with an alias or a local path it is a
``ConfigError`` rather than silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

from judgelab.errors import ConfigError
from judgelab.models.registry import MODEL_RECIPES, known_aliases, prepare_model, prepared_path

# Same shape the hub accepts: "org/name"; letters, digits, '-', '_', '.'; no '..', '--' or leading '.'.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?"
_HUB_ID = re.compile(rf"^{_HUB_PART}/{_HUB_PART}$")


def is_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and ".." not in name and "--" not in name


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name in {".", ".."} or "\\" in name


def resolve_model(name: str, revision: str | None = None) -> str:
    """Alias -> prepared folder; local dir -> absolute path; hub id -> unchanged (see module doc)."""
    name = name.strip()
    if not name:
        raise ConfigError("empty model name", hint=f"use an alias ({', '.join(known_aliases())}), "
                          "a local folder or a hub id like org/name")
    if name in MODEL_RECIPES:
        _no_revision(name, revision, "an alias")
        path = prepared_path(name) or prepare_model(name)
        return str(path)
    local = Path(name).expanduser()
    if local.is_dir():
        _no_revision(name, revision, "a local folder")
        return str(local.resolve())
    if local.exists():
        raise ConfigError(
            f"model {name!r} is a file, not a folder",
            hint="give the folder that holds config.json (for a GGUF, add an alias recipe and "
            "run `judgelab models prepare`)",
        )
    if not _looks_like_path(name) and is_hub_id(name):
        return name
    if _looks_like_path(name) or "/" in name:
        raise ConfigError(
            f"model folder {name!r} does not exist",
            hint="check the path (relative paths are resolved from the current directory), "
            "or use an alias from `judgelab models list`",
        )
    raise ConfigError(
        f"model {name!r} is not a known alias, a local folder or a hub id",
        hint=f"known aliases: {', '.join(known_aliases())}; hub ids look like org/name",
    )


def _no_revision(name: str, revision: str | None, what: str) -> None:
    if revision is not None:
        raise ConfigError(
            f"model {name!r} is {what}, so revision={revision!r} cannot apply",
            hint="drop `revision` (it is only for hub ids like org/name)",
        )


__all__ = ["is_hub_id", "resolve_model"]
