"""Real GRPO steps on SmolLM2-135M (TRL GRPOTrainer) with judgelab reward callables.

The judge-GRPO reward reads the gold column from the prompt rows; an async reward runs beside it
(TRL runs async rewards on its own event loop). Asserts: the rewards were called with the real
completions and columns, parameters changed, the saved model reloads and generates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from judgelab.rewards.judge_rewards import make_pointwise_judge_reward
from judgelab.rewards.trl_format import completion_text
from judgelab.training.config import GRPOTrainSpec
from judgelab.training.grpo import train_grpo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def parse_score(text: str, finish_reason: str | None = None) -> int | None:
    found = re.findall(r"Score:\s*(\d)\b", text)
    return int(found[-1]) if found else None


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_grpo_judge_reward_updates_model(smollm2_hf_dir: Path, tmp_path: Path):
    prompts = [
        {
            "prompt": [
                {"role": "system", "content": "Rate the response from 0 to 9. Answer Score: N."},
                {"role": "user", "content": f"Instruction: write about {topic}.\nResponse: {resp}"},
            ],
            "gold_score": gold,
        }
        for topic, resp, gold in [
            ("cats", "Cats sleep a lot and purr.", 8),
            ("rain", "banana banana banana", 1),
        ]
    ]
    seen: dict[str, Any] = {"calls": 0, "gold": [], "completions": []}
    judge_reward = make_pointwise_judge_reward(parse_score, low=0, high=9)

    def recording_judge_reward(prompts, completions, **kwargs):
        seen["calls"] += 1
        seen["gold"].extend(kwargs["gold_score"])
        seen["completions"].extend(completion_text(c) for c in completions)
        seen["completion_ids"] = list(kwargs["completion_ids"])
        return judge_reward(prompts, completions, **kwargs)

    # train_grpo hands a judge reward the trainer's end-of-completion ids (issue 11: truncation)
    recording_judge_reward.bind_stop_token_ids = judge_reward.bind_stop_token_ids  # type: ignore[attr-defined]

    async def length_reward(prompts, completions, **kwargs):
        # continuous, so rollouts of one prompt differ and the advantages are not all zero
        return [len(completion_text(c)) / 100 for c in completions]

    spec = GRPOTrainSpec(
        finetune="full",
        train_top_layers=2,
        learning_rate=1e-4,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        save_steps=1000,
        logging_steps=1,
    )
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(smollm2_hf_dir), dtype=torch.float32)
    result = train_grpo(
        str(smollm2_hf_dir), prompts, [recording_judge_reward, length_reward], spec,
        tmp_path / "grpo", resume="never",
    )

    assert result.global_step == 2
    assert seen["calls"] == 2  # one generation batch per step (steps_per_generation = 1)
    assert len(seen["completions"]) == 8 and all(isinstance(c, str) for c in seen["completions"])
    assert set(seen["gold"]) <= {8, 1} and len(seen["gold"]) == 8
    logged = [h for h in result.log_history if "reward" in h]
    assert logged, result.log_history
    # rewards differed inside a group, so there was a gradient (else the test proves nothing)
    assert any(h["frac_reward_zero_std"] < 1 for h in logged), logged
    assert any("judge_reward/invalid_rate" in k for h in result.log_history for k in h)
    # the reward knew which completions the 12-token limit cut off (finish_reason, as the judge reads it)
    assert any("judge_reward/truncated_rate" in k for h in result.log_history for k in h)
    assert all(len(ids) <= 12 for ids in seen["completion_ids"])

    trained = AutoModelForCausalLM.from_pretrained(str(result.model_path), dtype=torch.float32)
    top = f"model.layers.{base.config.num_hidden_layers - 1}.mlp.down_proj.weight"
    assert not torch.equal(base.state_dict()[top], trained.state_dict()[top])
    assert torch.equal(
        base.state_dict()["model.layers.0.mlp.down_proj.weight"],
        trained.state_dict()["model.layers.0.mlp.down_proj.weight"],
    )

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(result.model_path))
    ids = tok.apply_chat_template(
        prompts[0]["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = trained.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
