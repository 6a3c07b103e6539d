"""The frozen trunk's hidden-state cache (L3): computed once per example, reused by every epoch and
by a resumed run.

Layout, under ``OUT_DIR/trunk_cache/<cache id>/``:

- ``meta.json``: what the states depend on — the hash of the frozen weights (embeddings + the
  bottom N decoder layers, hashed from the tensors themselves, so a retrained or different base
  model never reuses another's states), N, the hidden size, the storage dtype and the precision
  the trunk ran in. The cache id is the sha256 of this file's content.
- ``states.bin``: the hidden states, appended row after row (``length × hidden`` values per
  example, bf16 stored as its 16 raw bits, or fp32).
- ``index.jsonl``: one line per example — ``key`` (sha256 of the token ids), ``offset`` and
  ``length`` (in rows of ``hidden`` values) — appended (flush + fsync) only after the rows it
  points at were written and fsynced. A kill leaves at most unindexed bytes at the end of
  ``states.bin`` and a torn index line; both are cut off on reopen, so a resumed run recomputes
  only the examples that were never indexed.

Reads go through a read-only ``numpy.memmap`` of ``states.bin`` (the OS pages it in), so a cache
larger than RAM still works. Writers take turns under a file lock (``.lock``), so several runs of
the same base model may share one cache folder (``trunk.cache_dir``).

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from judgelab.errors import RunDirError
from judgelab.store.jsonl import JsonlAppender, iter_jsonl, write_json_atomic

logger = logging.getLogger(__name__)

CacheDType = Literal["bfloat16", "float32"]
CACHE_DIRNAME = "trunk_cache"
_NP_DTYPE = {"bfloat16": np.uint16, "float32": np.float32}


def tokens_key(ids: Sequence[int]) -> str:
    """The cache key of one example: sha256 of its token ids."""
    return hashlib.sha256(json.dumps(list(ids), separators=(",", ":")).encode("ascii")).hexdigest()


def hash_parameters(named: Sequence[tuple[str, Any]]) -> str:
    """sha256 over (name, dtype, shape, bytes) of each tensor, in the order given."""
    h = hashlib.sha256()
    for name, t in named:
        t = t.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return h.hexdigest()


def _byte_dtype() -> Any:
    import torch

    return torch.uint8


@dataclass(frozen=True)
class _Entry:
    offset: int
    length: int


class TrunkCache:
    """Hidden states of the frozen trunk by example key (see the module docstring)."""

    @staticmethod
    def id_for(meta: dict[str, Any]) -> str:
        """The cache id (folder name) of the states described by ``meta``."""
        return hashlib.sha256(json.dumps(meta, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def __init__(self, root: Path, meta: dict[str, Any]) -> None:
        self.meta = dict(meta)
        self.cache_id = self.id_for(self.meta)
        self.dir = Path(root) / self.cache_id
        self.hidden = int(meta["hidden"])
        self.dtype: CacheDType = meta["dtype"]
        self._np_dtype = _NP_DTYPE[self.dtype]
        self._row_bytes = self.hidden * np.dtype(self._np_dtype).itemsize
        self.dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            stored = json.loads(meta_path.read_text(encoding="utf-8"))
            if stored != self.meta:
                raise RunDirError(f"{meta_path} describes another trunk than this run's",
                                  f"delete {self.dir} (it is only a cache)")
        else:
            write_json_atomic(meta_path, self.meta)
        self._states = self.dir / "states.bin"
        self._index_path = self.dir / "index.jsonl"
        self._entries: dict[str, _Entry] = {}
        from filelock import FileLock

        with FileLock(str(self.dir / ".lock")):  # a torn tail is only cut while no one writes
            self._load_index()
        self._map: np.memmap | None = None
        self.computed = 0  # examples computed by this process (the rest were reused)

    # ------------------------------------------------------------------ index
    def _load_index(self) -> None:
        end = 0
        if self._index_path.exists():
            for rec in iter_jsonl(self._index_path):
                e = _Entry(int(rec["offset"]), int(rec["length"]))
                self._entries[str(rec["key"])] = e
                end = max(end, e.offset + e.length)
        size = self._states.stat().st_size if self._states.exists() else 0
        want = end * self._row_bytes
        if size < want:
            raise RunDirError(f"{self._states} is shorter than its index says ({size} < {want} bytes)",
                              f"delete {self.dir} (it is only a cache) and rerun")
        if size > want:  # rows written by a run killed before it indexed them
            with open(self._states, "r+b") as f:
                f.truncate(want)
        self._rows = end

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def missing(self, keys: Sequence[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self._entries]

    # ------------------------------------------------------------------ write
    def append(self, items: Sequence[tuple[str, Any]]) -> None:
        """Store ``(key, states)`` pairs (states: a ``length × hidden`` tensor); durable on return.

        Writers of one cache folder take turns (a file lock), so runs may share a cache."""
        from filelock import FileLock

        if not items:
            return
        with FileLock(str(self.dir / ".lock")):
            self._load_index()  # another run may have appended since
            self._append_locked(items)

    def _append_locked(self, items: Sequence[tuple[str, Any]]) -> None:
        import torch

        self._map = None
        new: list[dict[str, Any]] = []
        with open(self._states, "ab") as f:
            for key, states in items:
                if key in self._entries or any(r["key"] == key for r in new):
                    continue
                t = states.detach().to("cpu")
                if t.ndim != 2 or t.shape[1] != self.hidden:
                    raise ValueError(f"states of shape {tuple(t.shape)}, expected (length, {self.hidden})")
                if self.dtype == "bfloat16":
                    raw = t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().view(np.uint16)
                else:
                    raw = t.to(torch.float32).contiguous().numpy()
                f.write(raw.tobytes())
                new.append({"key": key, "offset": self._rows, "length": int(t.shape[0])})
                self._rows += int(t.shape[0])
            f.flush()
            os.fsync(f.fileno())
        with JsonlAppender(self._index_path) as out:
            out.append(new)
        for r in new:
            self._entries[r["key"]] = _Entry(r["offset"], r["length"])
        self.computed += len(new)

    # ------------------------------------------------------------------ read
    def get(self, key: str) -> Any:
        """The stored states of ``key`` as a float32 tensor (length × hidden)."""
        import torch

        e = self._entries[key]
        if self._map is None:
            self._map = np.memmap(self._states, dtype=self._np_dtype, mode="r",
                                  shape=(self._rows, self.hidden))
        rows = np.array(self._map[e.offset:e.offset + e.length])
        t = torch.from_numpy(rows)
        if self.dtype == "bfloat16":
            t = t.view(torch.int16).view(torch.bfloat16)
        return t.float()

    def nbytes(self) -> int:
        return self._rows * self._row_bytes


__all__ = ["CACHE_DIRNAME", "CacheDType", "TrunkCache", "hash_parameters", "tokens_key"]
