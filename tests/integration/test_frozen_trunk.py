"""Frozen-trunk judge training (``judgelab.training.frozen_trunk`` / ``trunk_train``) on real SmolLM2.

Checked against independent computations on the full model:

- the cached path's loss on a batch (states of the bottom layers from the cache, then the top
  layers) equals the loss computed here by hand from one ordinary full-model forward pass, for
  the verdict loss (score-token cross-entropy + the expected-score regression term) and for the
  completion loss (weighted next-token cross-entropy over the completion);
- after training, the saved HF checkpoint's expected score, read by ``Judge`` with the hf
  backend exactly as a study uses it, equals the in-memory model's at the last step; with
  ``train_score_rows`` too (the saved head is untied, only the score rows moved);
- the frozen layers are bit-identical after training and the top layers changed;
- a run killed after a checkpoint resumes from it, computes no trunk state again, and ends with
  the same weights as an uninterrupted run.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import torch

from judgelab.judges import Judge, JudgeSpec, PointwiseItem
from judgelab.judges.templates import get_template
from judgelab.training.config import SFTTrainSpec, TrunkSpec
from judgelab.training.frozen_trunk import (
    SplitModel,
    TrunkInput,
    TrunkObjective,
    VerdictReadout,
    build_examples,
    loss_on_batch,
    score_token_ids,
)
from judgelab.training.trunk_train import fill_cache, train_frozen_trunk

pytestmark = pytest.mark.integration

INSTRUCTION = 'Write a short poem about a lighthouse.\nFollow these rules:\n- Include the word "lantern".\nKeep it under 25 words.'
CASES = [  # (response, gold score, brief trace)
    ("The lantern glows above the lighthouse, calm and bright.", 9, "On topic: PASS.\nRule 1: PASS."),
    ("Dogs bark at night.", 1, "On topic: FAIL.\nRule 1: FAIL."),
    ("A lighthouse stands. A lighthouse stands. A lighthouse stands.", 2, "On topic: PASS.\nRule 1: FAIL."),
    ("Lantern, lantern, lighthouse lantern.", 4, "On topic: PASS.\nRule 1: PASS."),
    ("The lighthouse keeper lights his lantern at dusk.", 8, "On topic: PASS.\nRule 1: PASS."),
    ("Waves.", 0, "On topic: FAIL.\nRule 1: FAIL."),
]
READOUT = VerdictReadout("Score: ", 0, 9)
FROZEN = 28  # of SmolLM2's 30 layers: the smallest top that still exercises two trained layers


def _inputs(mode: str) -> list[TrunkInput]:
    tpl = get_template("pointwise-compact-v1", mode)  # type: ignore[arg-type]
    out = []
    for response, score, trace in CASES:
        msgs = tpl.render({"instruction": INSTRUCTION, "response": response})
        target = f"Score: {score}" if mode == "non_reasoning" else f"{trace}\n\nScore: {score}"
        out.append(TrunkInput(msgs, target, score))
    return out


@pytest.fixture(scope="module")
def model_and_tokenizer(smollm2_hf_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm = AutoModelForCausalLM.from_pretrained(str(smollm2_hf_dir), dtype=torch.float32).eval()
    return lm, AutoTokenizer.from_pretrained(str(smollm2_hf_dir))


def _spec(**trunk: object) -> SFTTrainSpec:
    return SFTTrainSpec(learning_rate=3e-4, per_device_train_batch_size=3, max_steps=4, save_steps=2,
                        logging_steps=1, score_regression_weight=2.0 if not trunk.pop("completion", False) else 0.0,
                        trunk=TrunkSpec(frozen_layers=FROZEN, cache_dtype="float32", cache_precision="fp32", **trunk),
                        precision="fp32")


def test_cached_verdict_loss_equals_the_full_models(model_and_tokenizer, smollm2_hf_dir, tmp_path):
    lm, tok = model_and_tokenizer
    spec = _spec()
    inputs = _inputs("non_reasoning")
    split = SplitModel(lm, FROZEN)
    examples, dropped = build_examples(inputs, tok, str(smollm2_hf_dir), "verdict", READOUT, 1.0, 512)
    assert dropped == 0 and all(len(ex.positions) == 1 for ex in examples)
    cache, info = fill_cache(split, examples, spec.trunk, tmp_path, "cpu", progress=False)
    assert info["cache_computed"] == len(CASES)
    ids = score_token_ids(tok, str(smollm2_hf_dir), inputs[0], READOUT)
    objective = TrunkObjective(split, "verdict", spec, spec.trunk, READOUT, ids)
    got = loss_on_batch(split, objective, cache, examples)

    # by hand: one full forward per example, at the position the judge reads its score
    ces, sq = [], []
    with torch.no_grad():
        for ex, (_, score, _) in zip(examples, CASES, strict=True):
            logits = lm(input_ids=torch.tensor([ex.ids])).logits[0, ex.positions[0]]
            restricted = logits[torch.tensor(ids)]
            ces.append(-torch.log_softmax(restricted, -1)[score])
            expected = (torch.softmax(restricted, -1) * torch.arange(10.0)).sum()
            sq.append(((expected - score) / 9) ** 2)
    want = torch.stack(ces).mean() + 2.0 * torch.stack(sq).mean()
    assert float(got.loss.detach()) == pytest.approx(float(want), abs=1e-4)
    # and the examples' input is exactly what the judge reads: the prompt the hf backend plans
    assert examples[0].targets[0] == ids[CASES[0][1]]


def test_cached_completion_loss_equals_the_full_models(model_and_tokenizer, smollm2_hf_dir, tmp_path):
    lm, tok = model_and_tokenizer
    spec = _spec(completion=True, decision_weight=3.0)
    inputs = _inputs("reasoning")
    split = SplitModel(lm, FROZEN)
    examples, _ = build_examples(inputs, tok, str(smollm2_hf_dir), "completion", None, 3.0, 512)
    cache, _ = fill_cache(split, examples, spec.trunk, tmp_path, "cpu", progress=False)
    objective = TrunkObjective(split, "completion", spec, spec.trunk, None, None)
    got = loss_on_batch(split, objective, cache, examples)

    num = den = 0.0
    with torch.no_grad():
        for inp, ex in zip(inputs, examples, strict=True):
            full = tok.apply_chat_template([*inp.messages, {"role": "assistant", "content": inp.target}],
                                           tokenize=False)
            prompt = tok.apply_chat_template(list(inp.messages), add_generation_prompt=True, tokenize=False)
            enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
            n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
            logp = torch.log_softmax(lm(input_ids=torch.tensor([enc["input_ids"]])).logits[0], -1)
            start = len(prompt)
            decisive = [(start + m.start(), start + m.end())
                        for m in re.finditer(r"PASS|FAIL|(?<=Score: )\d", inp.target)]
            for t in range(n_prompt, len(enc["input_ids"])):
                a, b = enc["offset_mapping"][t]  # a token is decisive if it covers part of one
                w = 3.0 if any(a < e and s < b for s, e in decisive) else 1.0
                num += -float(logp[t - 1, enc["input_ids"][t]]) * w
                den += w
            assert ex.ids == enc["input_ids"]
    assert sum(w != 1.0 for ex in examples for w in ex.weights) >= 3 * len(CASES)  # PASS/FAIL ×2 + score
    assert float(got.loss.detach()) == pytest.approx(num / den, abs=1e-4)


def _judge_expected(model_dir: Path, response: str) -> float:
    spec = JudgeSpec.model_validate({
        "backend": {"kind": "hf", "model": {"name": str(model_dir), "device": "cpu"}},
        "template": "pointwise-compact-v1", "readout": "expected_only", "min_valid_mass": 0.0,
    })
    judge = Judge(spec)
    try:
        [j] = asyncio.run(judge.score_pointwise([PointwiseItem(INSTRUCTION, response)]))
    finally:
        asyncio.run(judge.aclose())
    assert j.verdict.parsed
    return float(j.expected_score)


def _in_memory_expected(lm, tok, smollm2_hf_dir: Path, response: str) -> float:
    tpl = get_template("pointwise-compact-v1", "non_reasoning")
    inp = TrunkInput(tpl.render({"instruction": INSTRUCTION, "response": response}), "Score: 0", 0)
    [ex], _ = build_examples([inp], tok, str(smollm2_hf_dir), "verdict", READOUT, 1.0, 512)
    ids = score_token_ids(tok, str(smollm2_hf_dir), inp, READOUT)
    with torch.no_grad():
        logits = lm(input_ids=torch.tensor([ex.ids])).logits[0, ex.positions[0], torch.tensor(ids)]
    return float((torch.softmax(logits, -1) * torch.arange(10.0)).sum())


@pytest.mark.parametrize("score_rows", [False, True], ids=["top-layers", "top-layers+score-rows"])
def test_saved_judge_reads_like_the_trained_module(score_rows, smollm2_hf_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm2_hf_dir))
    probe = CASES[0][0]
    seen: dict[str, float] = {}

    def at_step(state) -> None:
        if state.step == 4:
            seen["expected"] = _in_memory_expected(state.model, tok, smollm2_hf_dir, probe)

    spec = _spec(train_score_rows=score_rows)
    result = train_frozen_trunk(str(smollm2_hf_dir), _inputs("non_reasoning"), spec, tmp_path / "run",
                                loss="verdict", readout=READOUT, callbacks=[at_step], progress=False)
    assert result.global_step == 4
    assert _judge_expected(result.model_path, probe) == pytest.approx(seen["expected"], abs=1e-4)

    before = load_file(str(smollm2_hf_dir / "model.safetensors"))
    after = load_file(str(result.model_path / "model.safetensors"))
    for name, t in before.items():
        layer = int(name.split(".")[2]) if ".layers." in name else None
        if layer is not None and layer < FROZEN or "embed_tokens" in name:
            assert torch.equal(t, after[name]), name  # the trunk is untouched
    assert not torch.equal(before["model.layers.29.mlp.down_proj.weight"], after["model.layers.29.mlp.down_proj.weight"])
    config = json.loads((result.model_path / "config.json").read_text())
    if score_rows:
        ids = score_token_ids(tok, str(smollm2_hf_dir), _inputs("non_reasoning")[0], READOUT)
        head, emb = after["lm_head.weight"], after["model.embed_tokens.weight"]
        moved = (head != emb).any(dim=1).nonzero().flatten().tolist()
        assert config["tie_word_embeddings"] is False and sorted(moved) == sorted(ids)
    else:
        assert "lm_head.weight" not in after or torch.equal(after["lm_head.weight"], after["model.embed_tokens.weight"])


def test_killed_run_resumes_from_its_checkpoint_without_recomputing_the_cache(smollm2_hf_dir, tmp_path):
    from safetensors.torch import load_file

    class Killed(Exception):
        pass

    def kill_at_3(state) -> None:
        if state.step == 3:
            raise Killed

    spec = _spec()
    run = tmp_path / "killed"
    with pytest.raises(Killed):
        train_frozen_trunk(str(smollm2_hf_dir), _inputs("non_reasoning"), spec, run, loss="verdict",
                           readout=READOUT, callbacks=[kill_at_3], progress=False)
    assert (run / "checkpoint-2" / "trunk_state.pt").is_file() and not (run / "final").exists()
    resumed = train_frozen_trunk(str(smollm2_hf_dir), _inputs("non_reasoning"), spec, run, loss="verdict",
                                 readout=READOUT, progress=False)
    info = json.loads((resumed.model_path / "judgelab-trunk.json").read_text())
    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("checkpoint-2")
    assert info["cache_computed"] == 0 and info["cache_reused"] == len(CASES)
    assert resumed.global_step == 4 and [r["step"] for r in resumed.log_history] == [1, 2, 3, 4]

    straight = train_frozen_trunk(str(smollm2_hf_dir), _inputs("non_reasoning"), spec, tmp_path / "straight",
                                  loss="verdict", readout=READOUT, progress=False)
    a = load_file(str(resumed.model_path / "model.safetensors"))
    b = load_file(str(straight.model_path / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in b)
