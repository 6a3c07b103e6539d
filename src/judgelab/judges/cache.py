"""Content-addressed judgement cache (L2): SQLite in WAL mode, safe across threads and processes.

Key = sha256 of the canonical JSON (sorted keys, no whitespace) of the judge identity (backend
identity, model, template name + hash, mode, sampling incl. seed, score range, read-out) and the
inputs. Value = the judgement's JSON. Same judge + same inputs → same key, on any machine.

Concurrency: one connection per thread, WAL journal (readers never block the writer), a busy
timeout instead of "database is locked" errors, and one short transaction per write batch. A
process killed mid-write leaves the database consistent (SQLite's journal), so a rerun simply
misses the entries that were not committed.

Secrets: identity dicts from backends are secret-free by contract; ``cache_key`` and ``put``
additionally refuse any payload that contains the value of an environment variable whose name
looks like a credential (``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*CREDENTIAL*``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from judgelab.errors import ConfigError

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_LEN = 8
_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID
"""


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_env_snapshot: dict[Any, Any] | None = None
_env_secrets: list[str] = []


def secret_env_values() -> list[str]:
    """Values of credential-like environment variables (long enough to be real secrets).

    Recomputed only when the environment changed since the last call (a C-level dict comparison
    of CPython's ``os.environ._data``), so the per-call cost of the secret check stays tiny for
    the in-process reward path.
    """
    global _env_snapshot, _env_secrets
    data = getattr(os.environ, "_data", None)
    if data is not None and data == _env_snapshot:
        return _env_secrets
    secrets = [
        v
        for k, v in os.environ.items()
        if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET_LEN and v != "EMPTY"
    ]
    if data is not None:
        _env_snapshot, _env_secrets = dict(data), secrets
    return secrets


def assert_secret_free(blob: str, what: str, secrets: Sequence[str] | None = None) -> None:
    """Raise ``ConfigError`` if ``blob`` contains a credential-like environment value.

    ``secrets``: a list from ``secret_env_values()`` computed once for a whole batch.
    """
    for value in secret_env_values() if secrets is None else secrets:
        if value in blob:
            raise ConfigError(
                f"refusing to store a {what} that contains the value of a credential "
                "environment variable",
                "a backend identity or input carries a secret; identities must name the "
                "environment variable (api_key_env), never its value",
            )


def cache_key(payload: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``payload`` (judge identity + inputs)."""
    blob = canonical_json(payload)
    assert_secret_free(blob, "cache key")
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def judgement_keys(
    identity: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]], identity_json: str | None = None
) -> list[str]:
    """``cache_key({"judge": identity, "inputs": x})`` for each x, fast for batches.

    The identity is serialised once (or passed pre-serialised as ``identity_json``, which must be
    ``canonical_json(identity)``) and the environment is checked once per call; the result is
    identical to ``cache_key`` (keys sort as "inputs" < "judge").
    """
    secrets = secret_env_values()
    ident = canonical_json(identity) if identity_json is None else identity_json
    assert_secret_free(ident, "cache key", secrets)
    out = []
    for x in inputs:
        blob = '{"inputs":' + canonical_json(x) + ',"judge":' + ident + "}"
        if secrets:
            assert_secret_free(blob, "cache key", secrets)
        out.append(hashlib.sha256(blob.encode("utf-8")).hexdigest())
    return out


class JudgementCache:
    """A key → JSON-object store with hit/miss counters. Use one per file; share it freely."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self.hits = 0
        self.misses = 0
        self.writes = 0
        conn = self._conn()
        with conn:
            conn.execute(_SCHEMA)

    # ------------------------------------------------------------------ connections
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(
                    f"the judgement cache {self.path} could not switch to WAL mode (got {mode})",
                    "put the cache on a local file system (WAL does not work over some network mounts)",
                )
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()
        self._local = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads
    def get(self, key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT value FROM judgements WHERE key = ?", (key,)).fetchone()
        with self._lock:
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return json.loads(row[0])

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored values for those of ``keys`` that are present (counts hits and misses)."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        conn = self._conn()
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for k, v in conn.execute(f"SELECT key, value FROM judgements WHERE key IN ({marks})", chunk):
                found[k] = json.loads(v)
        with self._lock:
            n_hit = sum(1 for k in keys if k in found)
            self.hits += n_hit
            self.misses += len(keys) - n_hit
        return found

    def __contains__(self, key: str) -> bool:
        row = self._conn().execute("SELECT 1 FROM judgements WHERE key = ?", (key,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM judgements").fetchone()[0])

    # ------------------------------------------------------------------ writes
    def put(self, key: str, value: Mapping[str, Any]) -> None:
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Insert or replace entries in one short transaction; returns how many were written."""
        now = time.time()
        secrets = secret_env_values()
        rows = []
        for key, value in items:
            blob = canonical_json(value)
            assert_secret_free(blob, "cached judgement", secrets)
            rows.append((key, blob, now))
        if not rows:
            return 0
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO judgements (key, value, created) VALUES (?, ?, ?)", rows
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        with self._lock:
            self.writes += len(rows)
        return len(rows)

    # ------------------------------------------------------------------ stats
    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "writes": self.writes}

    def __repr__(self) -> str:
        return f"JudgementCache({str(self.path)!r}, hits={self.hits}, misses={self.misses})"


__all__ = [
    "JudgementCache",
    "assert_secret_free",
    "cache_key",
    "canonical_json",
    "judgement_keys",
    "secret_env_values",
]
