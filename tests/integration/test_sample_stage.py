"""`judgelab sample` for real: SmolLM2 through the hf backend, via the CLI, then resumed."""

import os
import subprocess
import sys

import pytest
import yaml

from judgelab.data.records import Record, iter_records, save_records

pytestmark = pytest.mark.integration


def test_sample_cli_hf_smollm2_and_rerun_is_noop(tmp_path, judgelab_test_home):
    prompts = tmp_path / "prompts.jsonl"
    save_records(prompts, [Record(id=f"p{i}", prompt=f"Write one sentence about {t}.", source="t")
                           for i, t in enumerate(["the sea", "a lantern", "autumn"])])
    cfg = {
        "stage": "sample",
        "prompts": str(prompts),
        "backend": {"kind": "hf", "model": {"name": "smollm2-135m-instruct"}, "batch_size": 4},
        "sampling": {"temperature": 1.0, "top_p": 0.95, "max_tokens": 12, "seed": 3},
        "n": 2,
        "chunk_size": 4,
    }
    cfg_path = tmp_path / "sample.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "JUDGELAB_HOME": str(judgelab_test_home)}
    cmd = [sys.executable, "-m", "judgelab.cli", "sample", str(cfg_path), "--run-dir", str(tmp_path / "run"),
           "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    recs = {x.id: x for x in iter_records(tmp_path / "run" / "samples.jsonl")}
    assert set(recs) == {f"p{i}#{k}" for i in range(3) for k in range(2)}
    assert all(x.responses[0].strip() for x in recs.values())
    assert recs["p1#1"].meta["seed"] == 4 and recs["p1#1"].meta["backend"]["kind"] == "hf"
    # two samples of one prompt use different seeds, so (almost surely) differ
    assert sum(recs[f"p{i}#0"].responses != recs[f"p{i}#1"].responses for i in range(3)) >= 2

    r2 = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r2.returncode == 0, r2.stderr
    assert "6 done before, 0 sampled now" in r2.stdout
    assert [x.id for x in iter_records(tmp_path / "run" / "samples.jsonl")] == list(recs)
