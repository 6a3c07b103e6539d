"""Regression-aware SFT (``judgelab.training.score_loss``) on the real SmolLM2 tokenizer and model.

Checked against independent computations:

- the verdict position found in TRL's collated batch, and E[s] computed there from the captured
  backbone state through the 10 score rows of the LM head, equal the judge's own read-out
  (``Judge`` with ``readout: expected_only`` on the hf backend) for the same prompt;
- the trainer's loss with weight w is its plain NLL loss + w·mean(((E[s] − s)/9)²), E[s] from a
  full-vocabulary forward pass done here by hand;
- a few real training steps log ``score_mse`` and save a judge that reloads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from judgelab.errors import ConfigError
from judgelab.judges import Judge, JudgeSpec, PointwiseItem
from judgelab.training.config import LoraSpec, SFTTrainSpec
from judgelab.training.score_loss import (
    score_regression_trainer_class,
    score_tokens,
    verdict_positions,
)
from judgelab.training.sft import SFTExample, build_sft_config, sft_rows, train_sft

pytestmark = pytest.mark.integration

INSTRUCTION = "Write one sentence about cats."
CASES = [  # (response, gold score, completion)
    ("Cats are independent animals that sleep a lot.", 7, "Score: 7"),
    ("Dogs bark.", 1, "- on topic: FAIL (no cats)\n- 12 words: PASS\nScore: 1"),
    ("Cats nap. Cats purr.", 4, "Score: 4"),
]


@pytest.fixture(scope="module")
def tokenizer(smollm2_hf_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_hf_dir))


@pytest.fixture(scope="module")
def judge(smollm2_hf_dir: Path) -> Judge:
    spec = JudgeSpec.model_validate({
        "backend": {"kind": "hf", "model": {"name": str(smollm2_hf_dir), "device": "cpu"}},
        "template": "pointwise-brief-v1", "readout": "expected_only", "min_valid_mass": 0.0,
    })
    return Judge(spec)


def _examples(judge: Judge) -> list[SFTExample]:
    return [
        SFTExample(judge.template.render({"instruction": INSTRUCTION, "response": r}), completion)
        for r, _, completion in CASES
    ]


def _trainer(smollm2_hf_dir: Path, tmp_path: Path, examples, weight: float, finetune: str = "full"):
    from datasets import Dataset

    from judgelab.training.model_setup import build_peft_config, load_model_for_training

    spec = SFTTrainSpec(finetune=finetune, learning_rate=1e-4, max_steps=1, per_device_train_batch_size=3,
                        shuffle_dataset=False, score_regression_weight=weight, save_steps=100,
                        lora=LoraSpec(r=4, alpha=8))
    lm, tok, _ = load_model_for_training(str(smollm2_hf_dir))
    cls = score_regression_trainer_class()
    return cls(model=lm, args=build_sft_config(spec, tmp_path), train_dataset=Dataset.from_list(sft_rows(examples)),
               processing_class=tok, peft_config=build_peft_config(spec),
               score_tokens=score_tokens(tok, 0, 9), score_weight=max(weight, 1e-9))


def _batch(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    return {k: v for k, v in batch.items()}


def test_score_tokens_for_smollm2(tokenizer):
    st = score_tokens(tokenizer, 0, 9)
    assert len(set(st.ids)) == 10
    assert [tokenizer.decode([i]).strip() for i in st.ids] == [str(x) for x in range(10)]
    with pytest.raises(ConfigError, match="single-digit"):
        score_tokens(tokenizer, 0, 10)


def test_verdict_positions_pick_the_final_score(tokenizer):
    st = score_tokens(tokenizer, 0, 9)
    prompt = tokenizer("Rate it. Score: 3 was the old one.", add_special_tokens=False)["input_ids"]
    target = tokenizer("- 3 rules: PASS\nScore: 5\nthanks", add_special_tokens=False)["input_ids"]
    no_verdict = tokenizer("- 3 rules: PASS", add_special_tokens=False)["input_ids"]
    rows = [[-100] * len(prompt) + target, [-100] * len(prompt) + no_verdict]
    width = max(map(len, rows))
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in rows])
    r, pos, vals = verdict_positions(labels, st, tokenizer)
    assert r.tolist() == [0] and vals.tolist() == [5.0]
    assert labels[0, pos[0] + 1].item() == st.ids[5]  # the state at pos predicts the score token


def test_training_expected_score_equals_the_judge_readout(smollm2_hf_dir, tmp_path, judge):
    from judgelab.training.score_loss import expected_score_at

    examples = _examples(judge)
    reference = asyncio.run(judge.score_pointwise([PointwiseItem(INSTRUCTION, r) for r, _, _ in CASES]))
    for finetune in ("full", "lora"):  # LoRA's B starts at zero: the same function, wrapped by peft
        trainer = _trainer(smollm2_hf_dir, tmp_path / finetune, examples, 1.0, finetune)
        batch = _batch(trainer)
        rows, pos, gold = verdict_positions(batch["labels"], trainer._score_tokens, trainer.processing_class)
        # the trainer's sampler shuffles: the gold scores (distinct per case) tell the rows apart
        assert rows.tolist() == [0, 1, 2] and sorted(gold.tolist()) == [1.0, 4.0, 7.0]
        causal_lm = trainer._causal_lm()
        captured: list[torch.Tensor] = []
        handle = causal_lm.base_model.register_forward_hook(
            lambda m, a, o, store=captured: store.append(o.last_hidden_state)
        )
        with torch.no_grad():
            trainer.model.eval()
            trainer.model(**{k: v for k, v in batch.items() if k != "labels"})
        handle.remove()
        expected = expected_score_at(captured[0], causal_lm.get_output_embeddings(), rows, pos, trainer._score_tokens)
        # CASES[1]'s completion has a trace first: the judge reads its score after other text
        for row, g in enumerate(gold.tolist()):
            case = [c[1] for c in CASES].index(int(g))
            if case != 1:
                assert expected[row].item() == pytest.approx(reference[case].expected_score, abs=1e-3)


def test_loss_is_nll_plus_weighted_squared_error(smollm2_hf_dir, tmp_path, judge):
    examples = _examples(judge)
    trainer = _trainer(smollm2_hf_dir, tmp_path, examples, 8.0)
    trainer.model.eval()
    batch = _batch(trainer)
    with torch.no_grad():
        with_reg = trainer.compute_loss(trainer.model, dict(batch)).item()
        plain = super(type(trainer), trainer).compute_loss(trainer.model, dict(batch)).item()
        logits = trainer.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    rows, pos, gold = verdict_positions(batch["labels"], trainer._score_tokens, trainer.processing_class)
    p = torch.softmax(logits[rows, pos][:, list(trainer._score_tokens.ids)].float(), -1)
    expected = (p * torch.arange(10.0)).sum(-1)
    by_hand = 8.0 * (((expected - gold) / 9) ** 2).mean().item()
    assert by_hand > 1e-3
    assert with_reg - plain == pytest.approx(by_hand, rel=1e-3)
    assert trainer._metrics["eval"]["score_mse"][-1] == pytest.approx(((expected - gold) ** 2).mean().item(), rel=1e-3)


@pytest.mark.slow
def test_train_sft_with_score_regression_logs_and_saves(smollm2_hf_dir, tmp_path, judge):
    spec = SFTTrainSpec(finetune="lora", learning_rate=1e-3, max_steps=2, per_device_train_batch_size=3,
                        score_regression_weight=4.0, logging_steps=1, save_steps=100, max_length=512)
    with pytest.raises(ConfigError, match="pointwise score range"):
        train_sft(str(smollm2_hf_dir), _examples(judge), spec, tmp_path / "x", resume="never")
    result = train_sft(str(smollm2_hf_dir), _examples(judge), spec, tmp_path / "run", resume="never",
                       score_range=(0, 9))
    logged = [h for h in result.log_history if "score_mse" in h]
    assert len(logged) == 2 and all(h["score_rows"] == 3 for h in logged)
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(str(smollm2_hf_dir))
    after = AutoModelForCausalLM.from_pretrained(str(result.model_path))
    changed = any(not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    assert changed
