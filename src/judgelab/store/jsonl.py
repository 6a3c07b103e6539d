"""Crash-safe JSONL files (L1).

Two ways to write:
- ``write_jsonl_atomic``: the whole file at once (temp file in the same folder, fsync, ``os.replace``),
  for outputs that are produced in one go (splits, data cards).
- ``JsonlAppender``: records appended as work finishes (flush + fsync per batch), for resumable
  stages. A ``kill -9`` can leave at most one torn last line; the appender cuts it off when it
  reopens the file and ``iter_jsonl`` ignores it, so a rerun never sees half a record.

A malformed line anywhere *but* the torn tail is a ``DataError`` naming the file and the line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from judgelab.errors import DataError


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_jsonl_atomic(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Write all ``records`` to ``path`` atomically; returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(_dumps(rec))
                f.write("\n")
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> None:
    """Write one JSON document atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=indent, default=_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def truncate_torn_tail(path: str | os.PathLike[str]) -> int:
    """Cut a last line that has no newline (a write torn by a crash). Returns bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # scan back for the last newline
        pos = size - 1
        chunk = 65536
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            idx = buf.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            pos = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


def iter_jsonl(path: str | os.PathLike[str], *, allow_torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Yield each record of a JSONL file.

    Blank lines are skipped. A last line without a trailing newline that does not parse is a torn
    write and is ignored when ``allow_torn_tail``; any other bad line raises ``DataError``.
    """
    for _, obj in iter_jsonl_numbered(path, allow_torn_tail=allow_torn_tail):
        yield obj


def iter_jsonl_numbered(
    path: str | os.PathLike[str], *, allow_torn_tail: bool = True
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Like ``iter_jsonl`` but yields ``(line_number, record)`` (1-based), for error messages."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found", "check the path (relative paths are from the working directory)")
    with open(path, encoding="utf-8") as f:
        lineno = 0
        for line in f:
            lineno += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                if allow_torn_tail and not line.endswith("\n"):
                    return
                raise DataError(
                    f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno})",
                    "fix or remove that line",
                ) from e
            if not isinstance(obj, dict):
                raise DataError(
                    f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}",
                    "each line must be one JSON object",
                )
            yield lineno, obj


class JsonlAppender:
    """Append records to a JSONL file durably (one fsync per ``append`` call).

    On open, a torn last line from an earlier crash is removed. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        truncate_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        self._fsync = fsync
        self.count = 0

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        lines = [_dumps(r) + "\n" for r in records]
        if not lines:
            return 0
        self._f.write("".join(lines))
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())
        self.count += len(lines)
        return len(lines)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "JsonlAppender",
    "iter_jsonl",
    "iter_jsonl_numbered",
    "truncate_torn_tail",
    "write_json_atomic",
    "write_jsonl_atomic",
    "write_text_atomic",
]
