"""train-judge on real parts: each recipe runs a few real optimizer steps on SmolLM2-135M over gold
labels written by the real annotate stage (rules gold), the weights move, and the saved judge
(judge.yaml → Judge → hf backend) loads and judges. Resume continues from a real checkpoint.

Kept small (1-2 trained layers, batch 2-4, 2 steps, short generations); a few minutes on 2 busy cores.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import torch

from judgelab.judges.judge import Judge
from judgelab.judges.types import PairwiseItem, PointwiseItem
from judgelab.stages.train_judge import (
    JUDGE_SPEC_FILE,
    TrainJudgeConfig,
    load_trained_judge_spec,
    run_train_judge,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOP = "model.layers.29.self_attn.q_proj.weight"  # SmolLM2-135M has 30 decoder layers
BOTTOM = "model.layers.0.self_attn.q_proj.weight"


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _responses(keyword: str, i: int) -> tuple[str, str]:
    good = (f"The {keyword} waited at dawn. Is anyone coming? People who pass the old {keyword} "
            "smile and tell its story to their children.")
    bad = ["word word word", f"{keyword} {keyword} {keyword} {keyword}", "A note about nothing at all."][i % 3]
    return good, bad


@pytest.fixture(scope="module")
def gold(tmp_path_factory) -> dict[str, Path]:
    """Gold labels (rules gold, reasoning traces) from the real annotate stage: pointwise + pairwise."""
    from judgelab.data.world import vocab
    from judgelab.data.world.generate import WorldConfig, generate_prompts
    from judgelab.stages.annotate import AnnotateConfig, run_annotate

    root = tmp_path_factory.mktemp("gold")
    prompts = generate_prompts(WorldConfig(), 6, [t.id for t in vocab.TOPICS[:6]], seed=0)
    point, pair = [], []
    for i, r in enumerate(prompts):
        good, bad = _responses(vocab.TOPICS_BY_ID[r.meta["family"]].keywords[0], i)
        point += [{"id": f"{r.id}-g", "prompt": r.prompt, "responses": [good], "source": "t"},
                  {"id": f"{r.id}-b", "prompt": r.prompt, "responses": [bad], "source": "t"}]
        pair.append({"id": r.id, "prompt": r.prompt, "responses": [good, bad] if i % 2 else [bad, good],
                     "source": "t"})
    out = {}
    for name, rows, template in (("pointwise", point, "pointwise-v1"), ("pairwise", pair, "pairwise-v1")):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
        cfg = AnnotateConfig.model_validate({
            "input": str(root / f"{name}.jsonl"),
            "judge": {"name": "gold", "backend": {"kind": "rules"}, "template": template, "mode": "reasoning"},
        })
        out[name] = run_annotate(cfg, root / f"gold-{name}", show_progress=False).output
    return out


def tensors(folder: Path, *names: str) -> list[torch.Tensor]:
    from safetensors import safe_open

    found: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for n in names:
                if n in st.keys():  # noqa: SIM118 (safe_open is not a dict)
                    found[n] = st.get_tensor(n)
    return [found[n] for n in names]


def config(model: Path | str, data: Path, recipe: dict, **kw) -> TrainJudgeConfig:
    return TrainJudgeConfig.model_validate({"model": {"name": str(model)}, "data": str(data), "recipe": recipe, **kw})


def sft_train(**kw) -> dict:
    return {"finetune": "full", "train_top_layers": 1, "learning_rate": 1e-4, "max_steps": 2,
            "per_device_train_batch_size": 2, "save_steps": 1000, "logging_steps": 1, "max_length": 1024, **kw}


@pytest.fixture(scope="module")
def sft_run(smollm2_hf_dir: Path, gold, tmp_path_factory) -> tuple[TrainJudgeConfig, Path]:
    """A non-reasoning judge SFT-trained on the gold scores (also the GRPO test's starting point)."""
    cfg = config(smollm2_hf_dir, gold["pointwise"],
                 {"kind": "sft", "train": sft_train(train_top_layers=2, max_steps=4, learning_rate=2e-4)})
    run = tmp_path_factory.mktemp("judges") / "sft"
    run_train_judge(cfg, run)
    return cfg, run


def test_sft_recipe_trains_and_the_judge_reads_expected_scores(smollm2_hf_dir: Path, sft_run, tmp_path):
    cfg, run = sft_run
    res = run_train_judge(cfg, run)  # completed: returns at once
    assert res.already_completed and res.global_step == 4 and res.n_examples == 12 and res.mode == "non_reasoning"
    top0, bottom0 = tensors(smollm2_hf_dir, TOP, BOTTOM)
    top1, bottom1 = tensors(res.model_path, TOP, BOTTOM)
    assert not torch.equal(top0, top1), "the trained top layer did not change"
    assert torch.equal(bottom0, bottom1), "a frozen layer changed"
    targets = [json.loads(x)["target"] for x in (run / "train_examples.jsonl").read_text().splitlines()]
    assert all(t.startswith("Score: ") and len(t) == 8 for t in targets)

    spec = load_trained_judge_spec(run)
    assert spec.readout == "expected_only" and spec.mode == "non_reasoning"
    judge = Judge(spec)
    items = [PointwiseItem("Write a haiku about rain.", "Soft rain on the roof / the garden drinks slowly / "
                           "puddles hold the sky"), PointwiseItem("Write a haiku about rain.", "no")]
    js = asyncio.run(judge.score_pointwise(items))
    asyncio.run(judge.aclose())
    assert len(js) == 2
    for j in js:
        assert j.verdict_source == "distribution" and j.valid_mass is not None and 0 < j.valid_mass <= 1
        if j.parsed:
            assert 0 <= j.expected_score <= 9
    assert any(j.parsed for j in js), [j.verdict.invalid_reason for j in js]


def test_distill_recipe_with_lora_pairwise_reasoning_judge(smollm2_hf_dir: Path, gold, tmp_path):
    train = sft_train(finetune="lora", train_top_layers=None, learning_rate=5e-4,
                      lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    cfg = config(smollm2_hf_dir, gold["pairwise"], {"kind": "distill", "train": train},
                 judge={"sampling": {"temperature": 0.0, "max_tokens": 24}})
    res = run_train_judge(cfg, tmp_path / "distill")
    assert res.template == "pairwise-v1" and res.mode == "reasoning" and res.global_step == 2
    # 6 battles in both orders; the longest (two checklist traces) do not fit max_length=1024 and are
    # dropped rather than truncated (TRL would cut the verdict off the end)
    assert res.n_examples >= 2 and res.n_examples + res.skipped.get("longer_than_max_length", 0) == 12
    rows = [json.loads(x) for x in (tmp_path / "distill" / "train_examples.jsonl").read_text().splitlines()]
    assert all(r["target"].endswith(f"\n\nVerdict: [[{r['gold']}]]") and "Response A" in r["target"] for r in rows)
    (q0, k0), (q1, k1) = tensors(smollm2_hf_dir, BOTTOM, "model.layers.0.self_attn.k_proj.weight"), \
        tensors(res.model_path, BOTTOM, "model.layers.0.self_attn.k_proj.weight")
    assert not torch.equal(q0, q1), "LoRA was not merged into q_proj"
    assert torch.equal(k0, k1), "k_proj has no adapter and must not change"

    judge = Judge(load_trained_judge_spec(tmp_path / "distill"))
    battles = asyncio.run(judge.score_pairwise([PairwiseItem("Say hi.", "Hi there!", "Go away.")]))
    asyncio.run(judge.aclose())
    [b] = battles
    assert b.second is not None and b.first.raw_text is not None
    assert b.first.mode == "reasoning" and b.first.template == "pairwise-v1"


def test_grpo_recipe_on_the_sft_judge_moves_it_and_it_judges(sft_run, gold, tmp_path):
    """GRPO after SFT (the paper's GRPO-after-distill path; a train-judge run dir as the model).
    The untrained SmolLM2 almost never answers "Score: N" when sampled, so every rollout would get
    the invalid reward -1 and GRPO would have no signal; the SFT judge answers in format."""
    _, sft_dir = sft_run
    train = {"finetune": "full", "train_top_layers": 1, "learning_rate": 1e-4, "max_steps": 2,
             "per_device_train_batch_size": 4, "num_generations": 4, "max_completion_length": 8,
             "temperature": 1.0, "save_steps": 1000, "logging_steps": 1}
    cfg = config(sft_dir, gold["pointwise"], {"kind": "grpo", "init": "distill", "train": train},
                 mode="non_reasoning", limit=4)
    res = run_train_judge(cfg, tmp_path / "grpo")
    assert res.global_step == 2 and res.recipe == "grpo"
    log = [json.loads(x) for x in (tmp_path / "grpo" / "train_log.jsonl").read_text().splitlines()]
    stepped = [r for r in log if "rewards/judge_pointwise_reward/mean" in r]
    assert stepped and all(-1.0 <= r["rewards/judge_pointwise_reward/mean"] <= 1.0 for r in stepped)
    assert any(r["judge_reward/invalid_rate"] < 1 for r in stepped), stepped
    # rewards varied inside a group on at least one step (4 sampled verdicts per prompt), so the
    # policy gradient is non-zero and the trained layer moved
    assert any(r.get("reward_std", 0) > 0 for r in stepped), stepped
    start = sft_dir / "final"
    top0, bottom0 = tensors(start, TOP, BOTTOM)
    top1, bottom1 = tensors(res.model_path, TOP, BOTTOM)
    assert not torch.equal(top0, top1) and torch.equal(bottom0, bottom1)

    spec = load_trained_judge_spec(tmp_path / "grpo")
    assert spec.readout == "expected_only"
    judge = Judge(spec)
    [j] = asyncio.run(judge.score_pointwise([PointwiseItem("Say hi.", "Hi there!")]))
    asyncio.run(judge.aclose())
    assert j.valid_mass is not None


def test_resume_continues_from_the_last_checkpoint(gold, tmp_path):
    """Full run, then simulate a crash after checkpoint-1 (later outputs gone, status interrupted):
    the rerun resumes the Trainer from checkpoint-1 and finishes step 2."""
    cfg = config("smollm2-tiny-random", gold["pointwise"],
                 {"kind": "sft", "train": sft_train(train_top_layers=None, save_steps=1, save_total_limit=None)})
    run = tmp_path / "run"
    first = run_train_judge(cfg, run)
    assert first.global_step == 2 and (run / "checkpoint-1").is_dir() and (run / "checkpoint-2").is_dir()
    shutil.rmtree(run / "checkpoint-2")
    shutil.rmtree(run / "final")
    (run / JUDGE_SPEC_FILE).unlink()
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (run / "manifest.json").write_text(json.dumps(manifest))

    second = run_train_judge(cfg, run)
    assert not second.already_completed and second.global_step == 2
    info = json.loads((second.model_path / "judgelab-train.json").read_text())
    assert info["resumed_from"].endswith("checkpoint-1")
    assert (run / JUDGE_SPEC_FILE).is_file()
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
