"""Multi-process training for real: ``torchrun --nproc_per_node 2`` runs ``judgelab train-judge`` as
two CPU processes (DDP over gloo) on the 2-layer ``smollm2-tiny-random`` model.

Checked: the two ranks train one model (each optimizer step consumes 2 × the per-device batch, so
the epoch advances twice as fast as in one process), only rank 0 writes the run directory and the
final model (LoRA merged on rank 0), and the saved judge loads and judges.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_ITEMS = 16
BATCH = 2


@pytest.fixture(scope="module")
def gold(tmp_path_factory) -> Path:
    from judgelab.data.world import vocab
    from judgelab.data.world.generate import WorldConfig, generate_prompts
    from judgelab.stages.annotate import AnnotateConfig, run_annotate

    root = tmp_path_factory.mktemp("mr_gold")
    prompts = generate_prompts(WorldConfig(), N_ITEMS // 2, [t.id for t in vocab.TOPICS[: N_ITEMS // 2]], seed=0)
    rows = []
    for r in prompts:
        rows.append({"id": f"{r.id}-a", "prompt": r.prompt, "responses": ["A short answer about it."], "source": "t"})
        rows.append({"id": f"{r.id}-b", "prompt": r.prompt, "responses": ["word word word"], "source": "t"})
    (root / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    cfg = AnnotateConfig.model_validate({
        "input": str(root / "items.jsonl"),
        "judge": {"name": "gold", "backend": {"kind": "rules"}, "template": "pointwise-v1", "mode": "reasoning"},
    })
    return run_annotate(cfg, root / "gold", show_progress=False).output


def _torchrun(cfg: dict, run_dir: Path, home: Path) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    judgelab = shutil.which("judgelab", path=str(Path(sys.executable).parent))
    if torchrun is None or judgelab is None:
        pytest.skip("torchrun / judgelab entry points not installed next to this Python")
    cfg_path = run_dir.parent / f"{run_dir.name}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "JUDGELAB_HOME": str(home), "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port),
           judgelab, "train-judge", str(cfg_path), "--run-dir", str(run_dir)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks
        out, err = proc.communicate()
        pytest.fail(f"torchrun timed out; stderr tail:\n{err[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_two_cpu_processes_train_one_judge(gold, tmp_path, judgelab_test_home, finetune):
    from judgelab.judges.judge import Judge
    from judgelab.judges.types import PointwiseItem
    from judgelab.models.registry import prepare_model
    from judgelab.stages.train_judge import load_trained_judge_spec

    prepare_model("smollm2-tiny-random", home=judgelab_test_home)
    cfg = {
        "stage": "train_judge",
        "model": {"name": "smollm2-tiny-random"},
        "data": str(gold),
        "template": "pointwise-brief-v1",
        "recipe": {"kind": "sft", "train": {
            "finetune": finetune, "learning_rate": 1e-3, "per_device_train_batch_size": BATCH, "max_steps": 2,
            "save_steps": 1, "logging_steps": 1, "max_length": 512,
        }},
    }
    run = tmp_path / "run"
    proc = _torchrun(cfg, run, judgelab_test_home)
    assert proc.returncode == 0, proc.stderr[-4000:]

    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r.get("step") == 1 and "loss" in r)
    assert first["epoch"] == pytest.approx(2 * BATCH / N_ITEMS)  # both ranks fed the same step
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    info = json.loads((run / "final" / "judgelab-train.json").read_text())
    assert info["global_step"] == 2
    assert (run / "final" / "model.safetensors").is_file()  # merged (LoRA) or full weights
    assert not (run / "final" / "adapter_config.json").exists()

    spec = load_trained_judge_spec(run)
    judge = Judge(spec)
    [j] = asyncio.run(judge.score_pointwise([PointwiseItem("Say hi.", "Hi there!")]))
    asyncio.run(judge.aclose())
    assert j.valid_mass is not None  # read from the saved weights (a random 2-layer model rarely writes a digit)
