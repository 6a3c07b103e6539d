"""Real SFT steps on SmolLM2-135M (TRL SFTTrainer): parameters move, the target gets likelier,
the saved model reloads and generates, and a run resumes from its checkpoint.

Kept small (short prompts, batch 2, 2-3 steps) so the module runs in a few minutes on 2 busy cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from judgelab.training.config import LoraSpec, SFTTrainSpec
from judgelab.training.model_setup import RESULT_FILENAME
from judgelab.training.sft import SFTExample, train_sft

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYSTEM = "Rate the response from 0 to 9. Answer Score: N."
DIGIT_7 = "7"


def examples(n: int = 8) -> list[SFTExample]:
    return [
        SFTExample(
            [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": f"Instruction: write about cats.\nResponse: cats nap {i}."}],
            "Score: 7",
        )
        for i in range(n)
    ]


def load(path: Path | str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.eval()
    return model, tok


def prob_of_seven(model, tok) -> float:
    """P(next token = "7") after the assistant turn starts with "Score: " (the judge read-out)."""
    msgs = examples(1)[0].messages
    text = tok.apply_chat_template(list(msgs), add_generation_prompt=True, tokenize=False) + "Score: "
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    return float(torch.softmax(logits.float(), -1)[tok.convert_tokens_to_ids(DIGIT_7)])


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_full_finetune_top_layers_learns_target_and_reloads(smollm2_hf_dir: Path, tmp_path: Path):
    base, tok = load(smollm2_hf_dir)
    p_before = prob_of_seven(base, tok)
    spec = SFTTrainSpec(
        finetune="full",
        train_top_layers=2,
        learning_rate=1e-3,
        max_steps=3,
        per_device_train_batch_size=2,
        save_steps=1000,
        logging_steps=1,
        max_length=128,
    )
    result = train_sft(str(smollm2_hf_dir), examples(), spec, tmp_path / "run", resume="never")

    assert result.model_path == tmp_path / "run" / "final"
    assert result.global_step == 3 and result.resumed_from is None
    assert 0 < result.trainable_params < result.total_params  # only the top 2 layers + norm
    assert (result.model_path / RESULT_FILENAME).is_file()

    trained, tok2 = load(result.model_path)
    base_sd, new_sd = base.state_dict(), trained.state_dict()
    n_layers = base.config.num_hidden_layers
    top = f"model.layers.{n_layers - 1}.mlp.down_proj.weight"
    bottom = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(base_sd[top], new_sd[top]), "a trained layer did not change"
    assert torch.equal(base_sd[bottom], new_sd[bottom]), "a frozen layer changed"
    assert torch.equal(base_sd["model.embed_tokens.weight"], new_sd["model.embed_tokens.weight"])

    # the completion-only loss taught the verdict: "7" after "Score: " became far likelier
    p_after = prob_of_seven(trained, tok2)
    assert p_after > max(0.2, 3 * p_before), (p_before, p_after)

    # and the saved folder is a working chat model
    msgs = [{"role": "user", "content": "Say hi."}]
    ids = tok2.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = trained.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_lora_checkpoints_and_resume(smollm2_hf_dir: Path, tmp_path: Path):
    out = tmp_path / "lora"
    spec = SFTTrainSpec(
        finetune="lora",
        lora=LoraSpec(r=4, alpha=8),
        learning_rate=1e-3,
        max_steps=2,
        per_device_train_batch_size=2,
        save_steps=1,
        save_total_limit=None,
        logging_steps=1,
        max_length=128,
    )
    first = train_sft(str(smollm2_hf_dir), examples(), spec, out, resume="never")
    assert first.global_step == 2
    assert (out / "checkpoint-1").is_dir() and (out / "checkpoint-2").is_dir()
    assert first.trainable_params < first.total_params // 10  # adapters only

    # resume: same output dir, one more step; "auto" picks the newest checkpoint
    longer = spec.model_copy(update={"max_steps": 3})
    second = train_sft(str(smollm2_hf_dir), examples(), longer, out, resume="auto")
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-2")
    assert second.global_step == 3
    assert (out / "checkpoint-3").is_dir()
    # the trainer state was restored (history of steps 1-2 from the checkpoint), not restarted
    steps = [h["step"] for h in second.log_history if "loss" in h]
    assert steps == [1, 2, 3], steps

    # the final folder holds the merged model: plain weights that differ from the base
    base, _ = load(smollm2_hf_dir)
    merged, _ = load(second.model_path)
    assert not (second.model_path / "adapter_config.json").exists()
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(base.state_dict()[key], merged.state_dict()[key])


def test_resume_from_missing_checkpoint_is_an_error(smollm2_hf_dir: Path, tmp_path: Path):
    from judgelab.errors import RunDirError

    spec = SFTTrainSpec(max_steps=1, per_device_train_batch_size=2, max_length=64)
    with pytest.raises(RunDirError):
        train_sft(str(smollm2_hf_dir), examples(2), spec, tmp_path / "x", resume=str(tmp_path / "nope"))
