"""A real policy GRPO run: tiny SmolLM2-architecture policy, real SmolLM2-135M hf proxy judge
(expected-score read-out), rules gold; crash after a checkpoint, resume, re-score with eval-policy.

What is checked against what:
- the policy's weights after training differ from the initial weights (GRPO got a signal);
- ``tracking.jsonl`` holds step 0 and later steps, each with proxy, gold and KL; the KL at step 0
  (policy = initial weights) is 0 and positive after training;
- a crash right after step 2's checkpoint and tracking, then a rerun: training resumes from
  checkpoint-2, no step is tracked twice, TRL log rows are not duplicated;
- ``eval-policy`` on the saved checkpoints reproduces the tracked responses exactly (same prompts,
  seeds and weights) and, through the shared cache, the same proxy and gold values.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgelab.data.records import save_records
from judgelab.data.world.generate import WorldConfig, family_ids, generate_prompts
from judgelab.store.jsonl import iter_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class CrashAfterSave:
    """Raises right after the checkpoint (and tracking) of ``step``."""

    def __new__(cls, step: int):  # a TrainerCallback subclass, built lazily (transformers import)
        from transformers import TrainerCallback

        class _Crash(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step == step:
                    raise RuntimeError(f"simulated crash after step {step}")

        return _Crash()


@pytest.fixture(scope="module")
def tiny_policy(judgelab_test_home: Path) -> Path:
    from judgelab.models.registry import prepare_model

    prepare_model("smollm2-tiny-random", home=judgelab_test_home)
    return judgelab_test_home / "models" / "smollm2-tiny-random"


@pytest.fixture(scope="module")
def prompt_files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("policy_prompts")
    recs = generate_prompts(WorldConfig(response_token_budget=16), 6, family_ids(), seed="test-train-policy")
    save_records(d / "train.jsonl", recs[:4])
    save_records(d / "test.jsonl", recs[4:])
    return d / "train.jsonl", d / "test.jsonl"


def _config(tiny_policy: Path, judge_dir: Path, prompt_files: tuple[Path, Path]):
    from judgelab.stages.train_policy import TrainPolicyConfig

    return TrainPolicyConfig.model_validate({
        "policy": {"name": str(tiny_policy)},
        "prompts": str(prompt_files[0]),
        "eval_prompts": str(prompt_files[1]),
        "reward": {"kind": "pointwise", "invalid": "penalty", "judge": {
            "name": "proxy-smollm2",
            "backend": {"kind": "hf", "model": {"name": str(judge_dir), "device": "cpu"}, "batch_size": 4},
            "readout": "expected_only"}},
        "gold": {"name": "gold-rules", "backend": {"kind": "rules", "world": "easy"}},
        "train": {"num_generations": 2, "per_device_train_batch_size": 4, "max_completion_length": 8,
                  "learning_rate": 1e-3, "max_steps": 3, "save_steps": 1, "logging_steps": 1},
        "tracking": {"every_steps": 2, "limit": 2},
    })


def _safetensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    out: dict = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_train_policy_crash_resume_and_eval_policy(tiny_policy, smollm2_hf_dir, prompt_files, tmp_path):
    from judgelab.stages.eval_policy import EvalPolicyConfig, run_eval_policy
    from judgelab.stages.train_policy import run_train_policy

    cfg = _config(tiny_policy, smollm2_hf_dir, prompt_files)
    run_dir = tmp_path / "policy"

    # --- first attempt: crash right after checkpoint-2 (and its tracking record) is written
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_train_policy(cfg, run_dir, callbacks=[CrashAfterSave(2)])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["policy"] == {"judge": "proxy-smollm2", "seed": 0, "proxy_protocol": "pointwise"}
    assert [r["step"] for r in iter_jsonl(run_dir / "tracking.jsonl")] == [0, 2]

    # --- rerun: resumes from checkpoint-2
    res = run_train_policy(cfg, run_dir)
    assert not res.skipped and res.global_step == 3
    assert res.resumed_from is not None and res.resumed_from.endswith("checkpoint-2")
    assert [p.name for p in res.checkpoints] == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert (res.model_path / "config.json").exists()

    # parameters changed
    before, after = _safetensors(tiny_policy), _safetensors(res.model_path)
    assert before.keys() == after.keys()
    changed = [k for k in before if not (before[k] == after[k]).all()]
    assert changed, "no parameter moved: GRPO produced no gradient"

    # tracking: step 0, 2 (first attempt) and 3 (final, after the resume), each exactly once
    rows = list(iter_jsonl(run_dir / "tracking.jsonl"))
    assert [r["step"] for r in rows] == [0, 2, 3]
    for r in rows:
        assert r["schema"] == "judgelab.tracking/v1"
        m = r["metrics"]
        for key in ("reward/proxy", "reward/gold", "kl/policy_init", "length/mean",
                    "judge/invalid_rate", "gold/invalid_rate"):
            assert m[key] is not None, (r["step"], key)
        assert 0.0 <= m["reward/proxy"] <= 9.0 and 0.0 <= m["reward/gold"] <= 9.0
        assert len(r["per_prompt"]["prompt_ids"]) == 2
    assert rows[0]["metrics"]["kl/policy_init"] == pytest.approx(0.0, abs=1e-6)
    assert rows[-1]["metrics"]["kl/policy_init"] > 1e-6

    samples = list(iter_jsonl(run_dir / "eval_samples.jsonl"))
    assert sorted({s["step"] for s in samples}) == [0, 2, 3] and len(samples) == 6
    assert all(s["gold_reasoning"] for s in samples)  # the rules gold's checklist trace

    # TRL log rows: one loss row per optimizer step, the lost stretch not duplicated
    log = list(iter_jsonl(run_dir / "train_log.jsonl"))
    loss_steps = [r["step"] for r in log if "loss" in r]
    assert loss_steps == [1, 2, 3]
    assert all("rewards/proxy/mean" in r and "judge/invalid_rate" in r for r in log if "loss" in r)

    # a completed run with the same config is a no-op
    again = run_train_policy(cfg, run_dir)
    assert again.skipped and again.tracked_steps == [0, 2, 3] and again.global_step == 3

    # --- eval-policy re-scores the checkpoints and reproduces the tracked samples
    ecfg = EvalPolicyConfig(train_run=str(run_dir), steps=[0, 3],
                            cache_path=str(run_dir / "judge_cache.sqlite"))
    eres = run_eval_policy(ecfg, tmp_path / "eval")
    assert eres.steps == [0, 3] and eres.computed == [0, 3]
    tracked = {(s["step"], s["prompt_id"]): s for s in samples}
    for s in iter_jsonl(tmp_path / "eval" / "eval_samples.jsonl"):
        t = tracked[(s["step"], s["prompt_id"])]
        assert s["response"] == t["response"], (s["step"], s["prompt_id"])
        assert s["proxy"] == pytest.approx(t["proxy"]) and s["gold"] == t["gold"]
    erows = {r["step"]: r for r in iter_jsonl(tmp_path / "eval" / "tracking.jsonl")}
    assert erows[3]["metrics"]["kl/policy_init"] == pytest.approx(rows[-1]["metrics"]["kl/policy_init"], rel=1e-4)
    assert run_eval_policy(ecfg, tmp_path / "eval").skipped


def test_kl_reference_modes_agree_and_lora_checkpoints_load(tiny_policy, tmp_path):
    """KL via disabled LoRA adapters == KL via a frozen copy of the initial weights (merged model);
    zero-initialised adapters give KL 0; a saved adapter reloads to the same samples."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from judgelab.training.heldout import (
        HeldOutPrompt,
        HeldOutSampling,
        ReferencePolicy,
        generate_heldout,
        load_policy_checkpoint,
        policy_kl,
    )
    from judgelab.training.model_setup import load_model_for_training

    base, tok, _ = load_model_for_training(str(tiny_policy))
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    prompts = [HeldOutPrompt(f"p{i}", ({"role": "user", "content": f"Write about item {i}."},)) for i in range(3)]
    sampling = HeldOutSampling(max_new_tokens=6, temperature=0.7, seed=0, batch_size=2)

    samples = generate_heldout(lora, tok, prompts, sampling)
    assert len(samples) == 3 and all(s.completion_ids for s in samples)
    assert policy_kl(lora, ReferencePolicy(None), samples).per_token == pytest.approx(0.0, abs=1e-7)

    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    via_adapters = policy_kl(lora, ReferencePolicy(None), samples)
    merged = copy.deepcopy(lora).merge_and_unload()
    via_copy = policy_kl(merged, ReferencePolicy(str(tiny_policy)), samples)
    assert via_adapters.per_token > 1e-4
    assert via_copy.per_token == pytest.approx(via_adapters.per_token, rel=1e-3)
    assert via_copy.per_sequence == pytest.approx(via_adapters.per_sequence, rel=1e-3)
    assert via_adapters.n_tokens == sum(len(s.completion_ids) for s in samples)

    # seeded sampling is reproducible, and a saved adapter reloads to the same policy
    again = generate_heldout(lora, tok, prompts, sampling)
    assert [s.text for s in again] != [s.text for s in samples]  # the adapters changed the policy
    assert [s.text for s in generate_heldout(lora, tok, prompts, sampling)] == [s.text for s in again]
    lora.save_pretrained(str(tmp_path / "adapter"))
    reloaded, rtok = load_policy_checkpoint(tmp_path / "adapter", initial_model=str(tiny_policy), device="cpu")
    assert [s.completion_ids for s in generate_heldout(reloaded, rtok, prompts, sampling)] == \
        [s.completion_ids for s in again]


def test_train_policy_with_a_remote_openai_judge_and_invalid_penalty(
    tiny_policy, prompt_files, llama_server, llama_model, tmp_path
):
    """The proxy is a real llama.cpp server (openai backend, top_logprobs read-out). The untrained
    135M judge rarely writes 'Score: N', so invalid judgements are common: the penalty policy
    must turn each into the configured reward and the rates must be logged, every step."""
    from judgelab.backends.llama_server import LLAMA_CPP_EXTRA_BODY
    from judgelab.stages.train_policy import TrainPolicyConfig, run_train_policy

    cfg = TrainPolicyConfig.model_validate({
        "policy": {"name": str(tiny_policy)},
        "prompts": str(prompt_files[0]),
        "eval_prompts": str(prompt_files[1]),
        "reward": {"kind": "pointwise", "invalid": "penalty", "invalid_penalty": -1.0, "judge": {
            "name": "proxy-llama",
            "backend": {"kind": "openai", "model": llama_model, "base_urls": [llama_server],
                        "concurrency": 4, "extra_body": dict(LLAMA_CPP_EXTRA_BODY)},
            "readout": "text+expected", "sampling": {"max_tokens": 8, "temperature": 0.0, "seed": 0}}},
        "gold": {"name": "gold-rules", "backend": {"kind": "rules"}},
        "train": {"num_generations": 2, "per_device_train_batch_size": 4, "max_completion_length": 8,
                  "max_steps": 2, "save_steps": 2},
        "tracking": {"every_steps": 2, "limit": 2, "kl": False},
    })
    res = run_train_policy(cfg, tmp_path / "run")
    assert res.global_step == 2 and res.tracked_steps == [0, 2]
    steps = [r for r in iter_jsonl(tmp_path / "run" / "train_log.jsonl") if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        rate = r["judge/invalid_rate"]
        assert 0.0 <= rate <= 1.0 and r["reward/invalid_rate"] == pytest.approx(rate)
        # every invalid rollout got exactly -1, valid ones an expected score in [0, 9]
        assert r["rewards/proxy/mean"] >= -1.0
        if rate == 1.0:
            assert r["rewards/proxy/mean"] == pytest.approx(-1.0)
    assert res.stats["reward/rollouts"] == 8
    for rec in iter_jsonl(tmp_path / "run" / "tracking.jsonl"):
        m = rec["metrics"]
        assert m["kl/policy_init"] is None  # KL switched off
        assert 0.0 <= m["judge/invalid_rate"] <= 1.0 and m["gold/invalid_rate"] == 0.0
        # tracking never applies the training penalty: invalid stays null
        bad = [v for v in rec["per_prompt"]["proxy"] if v is None]
        assert len(bad) == round(m["judge/invalid_rate"] * 2)
