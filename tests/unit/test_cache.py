"""Judgement cache: content keys, WAL, hit/miss counts, multi-process writers, no secrets."""

import multiprocessing as mp
import sqlite3
import threading

import pytest

from judgelab.errors import ConfigError
from judgelab.judges.cache import JudgementCache, cache_key, canonical_json


def test_key_is_canonical_and_content_addressed():
    a = cache_key({"judge": {"model": "m", "t": 1}, "inputs": {"x": "é"}})
    b = cache_key({"inputs": {"x": "é"}, "judge": {"t": 1, "model": "m"}})
    c = cache_key({"judge": {"model": "m", "t": 2}, "inputs": {"x": "é"}})
    assert a == b != c and len(a) == 64
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_get_put_counts_and_wal(tmp_path):
    path = tmp_path / "c.sqlite"
    with JudgementCache(path) as cache:
        assert cache.get("k1") is None
        cache.put("k1", {"v": 1})
        assert cache.get("k1") == {"v": 1}
        cache.put_many([("k2", {"v": 2}), ("k3", {"v": 3})])
        assert cache.get_many(["k1", "k3", "nope"]) == {"k1": {"v": 1}, "k3": {"v": 3}}
        assert cache.stats == {"hits": 3, "misses": 2, "writes": 3}
        assert len(cache) == 3 and "k2" in cache
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    # persisted across instances
    with JudgementCache(path) as cache:
        assert cache.get("k2") == {"v": 2}


def _writer(path, worker, n):
    cache = JudgementCache(path)
    for i in range(n):
        cache.put(f"w{worker}-{i}", {"worker": worker, "i": i})
        cache.get(f"w{(worker + 1) % 4}-{i}")
    cache.close()


def test_concurrent_processes_and_threads(tmp_path):
    path = tmp_path / "c.sqlite"
    JudgementCache(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 50)) for w in range(3)]
    for p in procs:
        p.start()
    cache = JudgementCache(path)
    threads = [threading.Thread(target=lambda: [cache.put(f"w3-{i}", {"i": i}) for i in range(50)])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(cache) == 200
    assert cache.get("w1-49") == {"worker": 1, "i": 49}


def test_secrets_never_enter_keys_or_values(tmp_path, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("JUDGELAB_TEST_API_KEY", secret)
    with pytest.raises(ConfigError, match="credential"):
        cache_key({"judge": {"model": "m", "api_key": secret}, "inputs": {}})
    with JudgementCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(ConfigError, match="credential"):
            cache.put("k", {"raw_text": f"Bearer {secret}"})
        assert len(cache) == 0
    # a non-credential variable with the same value is not a secret
    monkeypatch.delenv("JUDGELAB_TEST_API_KEY")
    monkeypatch.setenv("JUDGELAB_TEST_PATH", secret)
    cache_key({"judge": {"x": secret}})


def test_batch_keys_equal_single_keys(monkeypatch):
    from judgelab.judges.cache import judgement_keys

    ident = {"model": "m", "sampling": {"seed": 0, "temperature": 0.7}, "template_hash": "ab"}
    inputs = [{"instruction": "q", "response": "r"}, {"instruction": "é\n", "response": '"quoted"'}]
    assert judgement_keys(ident, inputs) == [cache_key({"judge": ident, "inputs": x}) for x in inputs]
    secret = "tok-abcdefghijklmnop"
    monkeypatch.setenv("SOME_SERVICE_TOKEN", secret)
    with pytest.raises(ConfigError):
        judgement_keys(ident, [{"instruction": secret, "response": "r"}])
