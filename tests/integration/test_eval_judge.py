"""eval-judge on real parts: the `judgelab train-judge` / `judgelab eval-judge` commands in a
subprocess, a trained judge loaded from its run dir, the real SmolLM2 as a base judge (hf
expected-score read-out and a real llama.cpp server), the rules gold judging its own labels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _gold(root: Path, protocol: str) -> Path:
    """Rules-gold labels for 4 synthetic prompts through the real annotate stage."""
    from judgelab.data.world import vocab
    from judgelab.data.world.generate import WorldConfig, generate_prompts
    from judgelab.stages.annotate import AnnotateConfig, run_annotate

    prompts = generate_prompts(WorldConfig(), 4, [t.id for t in vocab.TOPICS[:4]], seed=1)
    rows = []
    for i, r in enumerate(prompts):
        kw = vocab.TOPICS_BY_ID[r.meta["family"]].keywords[0]
        good = f"Is the {kw} awake at dawn? Everyone near the old {kw} knows its quiet and patient story."
        bad = ["ok ok ok", f"{kw} {kw} {kw}"][i % 2]
        if protocol == "pointwise":
            rows += [{"id": f"{r.id}-g", "prompt": r.prompt, "responses": [good], "source": "t"},
                     {"id": f"{r.id}-b", "prompt": r.prompt, "responses": [bad], "source": "t"}]
        else:
            rows.append({"id": r.id, "prompt": r.prompt, "responses": [good, bad] if i % 2 else [bad, good],
                         "source": "t"})
    (root / f"{protocol}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    template = "pointwise-v1" if protocol == "pointwise" else "pairwise-v1"
    cfg = AnnotateConfig.model_validate({
        "input": str(root / f"{protocol}.jsonl"),
        "judge": {"name": "gold", "backend": {"kind": "rules"}, "template": template, "mode": "reasoning"},
    })
    return run_annotate(cfg, root / f"gold-{protocol}", show_progress=False).output


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "judgelab.cli", *args], check=False, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_cli_train_then_eval_pointwise_judges(smollm2_hf_dir: Path, tmp_path: Path):
    data = _gold(tmp_path, "pointwise")
    train_cfg = {
        "stage": "train_judge", "model": {"name": str(smollm2_hf_dir)}, "data": str(data),
        "recipe": {"kind": "sft", "train": {"train_top_layers": 1, "max_steps": 1, "per_device_train_batch_size": 2,
                                            "save_steps": 1000, "max_length": 1024}},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train_cfg))
    out = _cli("train-judge", str(tmp_path / "train.yaml"), "--run-dir", str(tmp_path / "judge"))
    assert "sft judge (non_reasoning, pointwise-v1) trained 1 steps on 8 examples" in out.stdout

    eval_cfg = {
        "stage": "eval_judge", "data": str(data), "bootstrap": {"n_resamples": 200},
        "judges": [
            {"name": "trained", "from_run": str(tmp_path / "judge")},
            {"name": "base", "kind": "base", "judge": {
                "backend": {"kind": "hf", "model": {"name": str(smollm2_hf_dir)}}, "readout": "expected_only"}},
            {"name": "gold", "kind": "gold", "judge": {
                "backend": {"kind": "rules"}, "template": "pointwise-v1", "mode": "reasoning"}},
        ],
    }
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(eval_cfg))
    out = _cli("eval-judge", str(tmp_path / "eval.yaml"), "--run-dir", str(tmp_path / "eval"))
    for name in ("trained", "base", "gold"):
        assert name in out.stdout  # the rich table
    doc = json.loads((tmp_path / "eval" / "judge_eval.json").read_text())
    rows = {r["name"]: r for r in doc["judges"]}
    assert doc["schema"] == "judgelab.judge_eval/v1" and doc["n_items"] == 8
    assert rows["gold"]["alpha"] == pytest.approx(1.0) and rows["gold"]["invalid_rate"] == 0.0
    assert rows["gold"]["mean_reasoning_tokens"] is None and rows["gold"]["mean_reasoning_words"] > 20
    for name in ("trained", "base"):
        r = rows[name]
        assert r["readout"] == "expected_only" and r["mean_reasoning_tokens"] == 0.0
        assert 0.0 <= r["invalid_rate"] <= 1.0 and r["n_expected"] == round(8 * (1 - r["invalid_rate"]))
        if r["n_expected"] >= 2:
            assert r["ece"] is not None and r["ece"] >= 0
    assert rows["trained"]["backend"]["model"] == str((tmp_path / "judge" / "final").resolve())
    items = (tmp_path / "eval" / "eval_items.jsonl").read_text().splitlines()
    assert len(items) == 24
    assert "| gold | gold | 8 | 1.000" in (tmp_path / "eval" / "judge_eval.md").read_text()
    # a rerun of the completed evaluation returns at once
    again = _cli("eval-judge", str(tmp_path / "eval.yaml"), "--run-dir", str(tmp_path / "eval"))
    assert "gold" in again.stdout


def test_pairwise_eval_with_a_real_server_judge_and_reasoning_tokens(
    llama_server: str, llama_model: str, smollm2_hf_dir: Path, tmp_path: Path
):
    from judgelab.backends.llama_server import LLAMA_CPP_EXTRA_BODY
    from judgelab.stages.eval_judge import EvalJudgeConfig, run_eval_judge

    data = _gold(tmp_path, "pairwise")
    cfg = EvalJudgeConfig.model_validate({
        "data": str(data), "bootstrap": {"n_resamples": 200}, "reasoning_tokenizer": str(smollm2_hf_dir),
        "judges": [
            {"name": "smollm2-server", "kind": "hosted", "judge": {
                "backend": {"kind": "openai", "model": llama_model, "base_urls": [llama_server],
                            "extra_body": LLAMA_CPP_EXTRA_BODY},
                "template": "pairwise-v1", "mode": "reasoning", "sampling": {"max_tokens": 48}}},
            {"name": "gold", "kind": "gold", "judge": {
                "backend": {"kind": "rules"}, "template": "pairwise-v1", "mode": "reasoning"}},
        ],
    })
    res = run_eval_judge(cfg, tmp_path / "eval")
    rows = {r["name"]: r for r in res.rows}
    gold, server = rows["gold"], rows["smollm2-server"]
    assert gold["accuracy"] == 1.0 and gold["position_consistency"] == 1.0 and gold["accuracy_ci"] == [1.0, 1.0]
    assert gold["mean_reasoning_tokens"] > 50  # the checklist trace, counted with SmolLM2's tokenizer
    assert gold["mean_output_tokens"] > gold["mean_reasoning_tokens"]  # + the verdict line
    assert server["n_judgements"] == 8 and 0.0 <= server["accuracy"] <= 1.0
    assert server["backend"]["kind"] == "openai"
    items = [json.loads(x) for x in (tmp_path / "eval" / "eval_items.jsonl").read_text().splitlines()]
    srv = [i for i in items if i["judge"] == "smollm2-server"]
    # accuracy recomputed from the per-item records
    acc = sum(((i["first_choice"] == i["gold"]) + (i["second_choice"] == i["gold"])) / 2 for i in srv) / len(srv)
    assert server["accuracy"] == pytest.approx(acc)
