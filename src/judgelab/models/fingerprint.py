"""Content fingerprint of a local model folder (L1): what a judge's cache identity holds for it.

A folder *path* says nothing about the weights in it: a judge retrained in place (``train-judge``
rerun into the same run dir, a ``models prepare --force``) would keep its path and so its cache
key, and serve judgements of the old weights. ``folder_fingerprint`` is a sha256 over the name and
content of every regular file at the top of the folder (weights, config, tokenizer, chat template,
training manifest; sub-folders such as checkpoints are not part of the model). Hashing a 540 MB
SmolLM2 folder takes ~0.8 s here, so the result is memoised per process by each file's (size,
mtime, inode): a rewritten file is hashed again, an unchanged folder once.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

_MEMO: dict[tuple[str, tuple[tuple[str, int, int, int], ...]], str] = {}
_LOCK = threading.Lock()


def _files(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        return sorted((e for e in it if e.is_file(follow_symlinks=True)), key=lambda e: e.name)


def folder_fingerprint(folder: str | Path) -> str:
    """sha256 (hex) over the names and bytes of the top-level files of ``folder``."""
    folder = Path(folder).expanduser().resolve()
    entries = _files(folder)
    stat_key = tuple(
        (e.name, st.st_size, st.st_mtime_ns, st.st_ino) for e in entries for st in (e.stat(follow_symlinks=True),)
    )
    key = (str(folder), stat_key)
    with _LOCK:
        hit = _MEMO.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    for e in entries:
        h.update(e.name.encode("utf-8") + b"\0")
        with open(e.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        h.update(b"\0")
    digest = h.hexdigest()
    with _LOCK:
        _MEMO[key] = digest
    return digest


__all__ = ["folder_fingerprint"]
