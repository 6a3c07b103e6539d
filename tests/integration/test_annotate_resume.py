"""Resume after ``kill -9``, for real: ``judgelab annotate`` in a subprocess, SIGKILLed mid-run.

The rerun of the same command must leave every item in the output exactly once, keep the lines
written before the kill byte for byte, skip those items (``done_before``), judge only the rest,
and serve from the cache the judgements that were made but not yet written when the kill came.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from judgelab.data.world.generate import WorldConfig, family_ids, generate_prompts
from judgelab.store.jsonl import iter_jsonl

pytestmark = pytest.mark.integration

LLAMA_MODEL = "smollm2"  # the name the conftest's llama_server serves SmolLM2 under


def _write_input(path: Path, n: int) -> None:
    recs = generate_prompts(WorldConfig(), n, family_ids(), seed="resume-test")
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(recs):
            d = r.to_json()
            words = (
                r.meta["constraints"][0].get("word", "river") if r.meta["constraints"] else "river"
            )
            d["responses"] = [f"It began with {words}. Response {i} is short. Is it? let it be"]
            f.write(json.dumps(d) + "\n")


def _cmd(cfg: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "judgelab.cli",
        "annotate",
        str(cfg),
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_after(
    cmd: list[str], out: Path, at_least: int, cwd: Path, timeout_s: float = 120.0
) -> int:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    try:
        while _count_lines(out) < at_least:
            if proc.poll() is not None:
                raise AssertionError(
                    f"annotate ended before the kill: rc={proc.returncode}\n"
                    f"{proc.stderr.read().decode()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError("annotate made no progress in time")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    return proc.returncode


def _resume_and_check(tmp_path: Path, cfg: Path, n: int, kill_at: int) -> dict:
    run_dir = tmp_path / "run"
    out = run_dir / "judgements.jsonl"
    rc = _kill_after(_cmd(cfg, run_dir), out, kill_at, cwd=tmp_path)
    assert rc == -signal.SIGKILL
    before = out.read_bytes()
    complete_before = before[: before.rfind(b"\n") + 1]
    n_before = complete_before.count(b"\n")
    assert kill_at <= n_before < n, "the kill must land mid-run"
    # simulate the worst case of a kill during a write: a torn last line
    with open(out, "ab") as f:
        f.write(b'{"schema":"judgelab.annotation/v1","id":"torn')

    done = subprocess.run(
        _cmd(cfg, run_dir), check=False, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]

    after = out.read_bytes()
    assert after.startswith(complete_before), (
        "lines written before the kill must be kept as they were"
    )
    recs = list(iter_jsonl(out, allow_torn_tail=False))
    ids = [r["id"] for r in recs]
    expected_ids = {
        json.loads(line)["id"] for line in (tmp_path / "in.jsonl").read_text().splitlines()
    }
    assert len(ids) == n and set(ids) == expected_ids, "every item exactly once"

    manifest = json.loads((run_dir / "manifest.json").read_text())
    stats = manifest["stats"]
    assert manifest["status"] == "completed" and manifest["resumed"] == 1
    assert stats["annotate/done_before"] == n_before
    assert stats["annotate/computed"] == n - n_before
    # judged after the resume = served from the cache (made before the kill) + fresh calls
    new = recs[n_before:]
    cache = stats["cache"]
    assert cache["hits"] == sum(r["cached"] for r in new)
    assert cache["hits"] + cache["misses"] == len(new)
    assert cache["writes"] == cache["misses"]
    return {"n_before": n_before, "new": new, "cache": cache}


def test_resume_after_sigkill_rules_gold(tmp_path):
    n = 1500
    _write_input(tmp_path / "in.jsonl", n)
    cfg = tmp_path / "annotate.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "stage": "annotate",
                "input": "in.jsonl",
                "judge": {"name": "gold", "backend": {"kind": "rules"}},
                "chunk_size": 5,
                "concurrency": 2,
            }
        )
    )
    res = _resume_and_check(tmp_path, cfg, n, kill_at=150)
    # judgements are those of the gold, whichever run made them
    from judgelab.data.world.gold import score_response

    for r in res["new"][:50]:
        assert r["score"] == score_response(r["prompt"], r["responses"][0], world="easy").score


@pytest.mark.slow
def test_resume_after_sigkill_llama_server(tmp_path, llama_server):
    n = 10
    _write_input(tmp_path / "in.jsonl", n)
    cfg = tmp_path / "annotate.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "stage": "annotate",
                "input": "in.jsonl",
                "judge": {
                    "name": "smollm2",
                    "backend": {
                        "kind": "openai",
                        "model": LLAMA_MODEL,
                        "base_urls": [llama_server],
                    },
                    "readout": "text+expected",
                    "sampling": {"max_tokens": 6},
                },
                "chunk_size": 2,
                "concurrency": 1,
            }
        )
    )
    res = _resume_and_check(tmp_path, cfg, n, kill_at=2)
    for r in res["new"]:
        assert r["judge"]["backend"] == {"kind": "openai", "model": LLAMA_MODEL}
        assert isinstance(r["raw_text"], str) and r["invalid"] == (r["score"] is None)
