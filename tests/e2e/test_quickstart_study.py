"""The quickstart study at its smallest size, end to end through the CLI (what `make demo` runs).

Real parts only: SmolLM2-135M for sampling, both judges and the policies, the rules gold, TRL
SFT/GRPO, the report. The overrides shrink every size in experiments/quickstart.yaml; nothing
else changes. A second run of the same command must skip every step (resumability).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SMALLEST = [
    "data.splits.judge_train=6",
    "data.splits.judge_eval=3",
    "data.splits.policy_train=4",
    "data.splits.policy_test=2",
    "judges.0.train.recipe.train.max_steps=2",
    "judges.0.train.recipe.train.save_steps=2",
    "judges.0.train.recipe.train.per_device_train_batch_size=4",
    "judges.1.train.recipe.train.max_steps=2",
    "judges.1.train.recipe.train.save_steps=2",
    "judges.1.train.recipe.train.per_device_train_batch_size=4",
    "judges.1.train.judge.sampling.max_tokens=160",
    "eval_judges.limit=6",
    "policies.train.train.max_steps=2",
    "policies.train.train.save_steps=1",
    "policies.train.tracking.every_steps=1",
    "policies.train.tracking.limit=2",
]


def _run(run_dir: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "judgelab.cli", "run", str(ROOT / "experiments" / "quickstart.yaml"),
           f"run_dir={run_dir}", *SMALLEST]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_quickstart_smallest_end_to_end(tmp_path):
    run_dir = tmp_path / "quickstart"
    proc = _run(run_dir, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["stage"] == "study"

    # data → samples (+ world variants) → gold labels on every response
    samples = _jsonl(run_dir / "samples" / "judge_train" / "samples.jsonl")
    variants = {r["meta"].get("variant") for r in samples} - {None}
    assert len([r for r in samples if "variant" not in r["meta"]]) == 6 and variants
    gold = _jsonl(run_dir / "gold" / "judge_train" / "judgements.jsonl")
    assert len(gold) == len(samples)

    # both judges trained and evaluated against the gold on held-out items
    for name in ("nonreasoning", "reasoning"):
        assert (run_dir / "judges" / name / "judge.yaml").is_file()
        assert (run_dir / "judges" / name / "final" / "config.json").is_file()
    ev = json.loads((run_dir / "judge_eval" / "judge_eval.json").read_text())
    names = {j["name"] for j in ev["judges"]}
    assert {"nonreasoning", "reasoning"} <= names
    for j in ev["judges"]:
        assert 0.0 <= j["invalid_rate"] <= 1.0 and j["n"] > 0

    # one policy per judge, tracked by proxy and gold at steps 0, 1, 2 on 2 held-out prompts
    for name in ("nonreasoning", "reasoning"):
        pdir = run_dir / "policies" / name / "seed0"
        tracking = _jsonl(pdir / "tracking.jsonl")
        assert [t["step"] for t in tracking] == [0, 1, 2]
        for t in tracking:
            assert t["metrics"]["reward/gold"] is not None and len(t["per_prompt"]["gold"]) == 2
            assert "kl/policy_init" in t["metrics"] and "reward/proxy" in t["metrics"]
        assert (pdir / "checkpoints").is_dir()

    # the report: HTML + Markdown + figures, numbers from the records
    report = run_dir / "report"
    html = (report / "report.html").read_text()
    assert "nonreasoning" in html and "reasoning" in html and "<img" in html
    assert (report / "report.md").is_file() and list(report.glob("fig_*.png"))

    # rerun: every step is skipped, nothing recomputed
    before = (run_dir / "policies" / "reasoning" / "seed0" / "tracking.jsonl").read_bytes()
    t0 = time.monotonic()
    again = _run(run_dir, timeout=600)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert time.monotonic() - t0 < 120
    assert (run_dir / "policies" / "reasoning" / "seed0" / "tracking.jsonl").read_bytes() == before
