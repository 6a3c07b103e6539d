"""report_to for real trainings (issue 11, item 7): TensorBoard event files and an offline W&B run
hold the trainer's log rows *and* judgelab's own tracking metrics, read back from disk.

A real train-policy (tiny SmolLM2-architecture policy, rules proxy and rules gold: no judge model,
so it stays quick) and a real train-judge SFT (same tiny model) with ``report_to``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgelab.data.records import save_records
from judgelab.data.world.generate import WorldConfig, family_ids, generate_prompts
from judgelab.store.jsonl import iter_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("tracking_extra")]


def read_tb_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    import struct

    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for f in sorted(folder.rglob("events.out.tfevents.*")):
        data, pos = f.read_bytes(), 0
        while pos + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            ev = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
            pos += 12 + n + 4
            for v in ev.summary.value:
                if v.HasField("simple_value"):
                    out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


@pytest.fixture(scope="module")
def tiny_policy(judgelab_test_home: Path) -> Path:
    from judgelab.models.registry import prepare_model

    prepare_model("smollm2-tiny-random", home=judgelab_test_home)
    return judgelab_test_home / "models" / "smollm2-tiny-random"


def test_train_policy_reports_to_tensorboard_and_offline_wandb(tiny_policy, tmp_path, monkeypatch):
    from judgelab.stages.train_policy import TrainPolicyConfig, run_train_policy

    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "TENSORBOARD_LOGGING_DIR", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    recs = generate_prompts(WorldConfig(response_token_budget=16), 5, family_ids(), seed="test-trackers")
    save_records(tmp_path / "train.jsonl", recs[:3])
    save_records(tmp_path / "test.jsonl", recs[3:])
    rules = {"backend": {"kind": "rules", "world": "easy"}}
    cfg = TrainPolicyConfig.model_validate({
        "policy": {"name": str(tiny_policy)}, "prompts": str(tmp_path / "train.jsonl"),
        "eval_prompts": str(tmp_path / "test.jsonl"),
        "reward": {"kind": "pointwise", "judge": {"name": "proxy-rules", **rules}},
        "gold": {"name": "gold-rules", **rules},
        "train": {"num_generations": 2, "per_device_train_batch_size": 4, "max_completion_length": 8,
                  "learning_rate": 1e-3, "max_steps": 2, "save_steps": 2, "logging_steps": 1,
                  "report_to": ["tensorboard", "wandb"]},
        "tracking": {"every_steps": 2, "limit": 2, "kl": False},
    })
    run_dir = tmp_path / "policy"
    res = run_train_policy(cfg, run_dir, show_progress=False)
    assert res.tracked_steps == [0, 2]
    tracked = {r["step"]: r["metrics"] for r in iter_jsonl(run_dir / "tracking.jsonl")}

    scalars = read_tb_scalars(run_dir / "tensorboard")
    # the trainer's own rows (TRL) and the reward's metrics logged through TRL
    assert [s for s, _ in scalars["train/loss"]] == [1, 2]
    assert "train/judge/invalid_rate" in scalars and "train/reward/invalid_rate" in scalars
    # judgelab's tracking metrics, at the tracked steps, equal to tracking.jsonl
    for name in ("reward/proxy", "reward/gold", "judge/invalid_rate", "length/mean"):
        assert scalars[f"tracking/{name}"] == [(s, pytest.approx(tracked[s][name])) for s in (0, 2)], name

    [offline] = list((run_dir / "wandb").glob("offline-run-*"))
    [record_file] = list(offline.glob("run-*.wandb"))
    blob = record_file.read_bytes()
    for key in (b"tracking/reward/gold", b"tracking/reward/proxy", b"train/loss", b"train/global_step"):
        assert key in blob, key
    import wandb

    assert wandb.run is None  # finished with the training: a study's next policy gets its own run


def test_train_judge_reports_to_tensorboard(tiny_policy, tmp_path):
    from judgelab.stages.train_judge import TrainJudgeConfig, run_train_judge

    rows = [{"id": f"r{i}", "prompt": f"Write about topic {i}.", "responses": [f"Topic {i} is fine."],
             "source": "t", "labels": {"score": i % 10}} for i in range(8)]
    (tmp_path / "gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainJudgeConfig.model_validate({
        "model": {"name": str(tiny_policy)}, "data": str(tmp_path / "gold.jsonl"),
        "recipe": {"kind": "sft", "train": {"max_steps": 2, "per_device_train_batch_size": 4,
                                            "logging_steps": 1, "save_steps": 2, "report_to": ["tensorboard"]}},
    })
    res = run_train_judge(cfg, tmp_path / "judge", show_progress=False)
    assert res.global_step == 2
    scalars = read_tb_scalars(tmp_path / "judge" / "tensorboard")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2]
    logged = [r["loss"] for r in iter_jsonl(tmp_path / "judge" / "train_log.jsonl") if "loss" in r]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(logged, rel=1e-5)


def test_tracker_sink_writes_tracking_metrics_to_tensorboard(tmp_path):
    from judgelab.training.trackers import TrackerSink, tracker_session

    sink = TrackerSink(["tensorboard"], tmp_path)
    with tracker_session(["tensorboard"], tmp_path):
        logged = sink.publish(0, {"reward/proxy": 4.5, "reward/gold": 5.0, "reward/gold_se": None,
                                  "kl/policy_init": 0.0, "judge/invalid_rate": 0.25, "note": "text"})
        sink.publish(10, {"reward/proxy": 6.0, "reward/gold": 4.0, "kl/policy_init": float("nan")})
    sink.close()
    assert set(logged) == {"tracking/reward/proxy", "tracking/reward/gold", "tracking/kl/policy_init",
                           "tracking/judge/invalid_rate"}  # None, NaN and text are left out
    scalars = read_tb_scalars(tmp_path / "tensorboard")
    assert scalars["tracking/reward/gold"] == [(0, 5.0), (10, 4.0)]
    assert scalars["tracking/reward/proxy"] == [(0, 4.5), (10, 6.0)]
    assert scalars["tracking/kl/policy_init"] == [(0, 0.0)]
