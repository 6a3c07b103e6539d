import asyncio

import pytest

from judgelab.errors import DataError
from judgelab.store.jsonl import iter_jsonl
from judgelab.store.resumable import ResumableJob


def _job(out, calls, fail_on=None, concurrency=1):
    async def process(chunk):
        calls.append([c["id"] for c in chunk])
        if fail_on is not None and fail_on in [c["id"] for c in chunk]:
            raise RuntimeError("boom")
        await asyncio.sleep(0)
        return [{"id": c["id"], "y": c["x"] * 2} for c in chunk]

    return ResumableJob(output=out, key=lambda it: it["id"], process=process, chunk_size=2,
                        concurrency=concurrency, show_progress=False)


def test_runs_all_and_skips_done_on_rerun(tmp_path):
    items = [{"id": f"i{k}", "x": k} for k in range(5)]
    out = tmp_path / "o.jsonl"
    calls = []
    res = asyncio.run(_job(out, calls).run(items))
    assert (res.total, res.done_before, res.computed) == (5, 0, 5)
    calls.clear()
    res = asyncio.run(_job(out, calls).run(items))
    assert res.computed == 0 and calls == []
    assert sorted(r["id"] for r in iter_jsonl(out)) == [f"i{k}" for k in range(5)]


def test_crash_keeps_finished_chunks_and_resume_completes(tmp_path):
    items = [{"id": f"i{k}", "x": k} for k in range(6)]
    out = tmp_path / "o.jsonl"
    calls = []
    with pytest.raises(RuntimeError):
        asyncio.run(_job(out, calls, fail_on="i4").run(items))
    done = [r["id"] for r in iter_jsonl(out)]
    assert done == ["i0", "i1", "i2", "i3"]
    calls.clear()
    res = asyncio.run(_job(out, calls).run(items))
    assert calls == [["i4", "i5"]] and res.done_before == 4 and res.complete
    ids = [r["id"] for r in iter_jsonl(out)]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 6


def test_concurrent_chunks(tmp_path):
    items = [{"id": f"i{k}", "x": k} for k in range(9)]
    out = tmp_path / "o.jsonl"
    res = asyncio.run(_job(out, [], concurrency=3).run(items))
    assert res.computed == 9
    assert {r["id"]: r["y"] for r in iter_jsonl(out)} == {f"i{k}": 2 * k for k in range(9)}


def test_duplicate_ids_rejected(tmp_path):
    with pytest.raises(DataError, match="duplicate item id"):
        asyncio.run(_job(tmp_path / "o.jsonl", []).run([{"id": "a", "x": 1}, {"id": "a", "x": 2}]))
