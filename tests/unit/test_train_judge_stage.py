"""train_judge config validation, the written judge spec, and the stage's control flow (training
replaced by a recorder, tokenizer by a character counter: no model is loaded here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from judgelab.config.loader import load_config
from judgelab.errors import DataError
from judgelab.judges.templates import get_template
from judgelab.stages.registry import get_stage
from judgelab.stages.train_judge import (
    JUDGE_SPEC_FILE,
    TrainJudgeConfig,
    load_trained_judge_spec,
    resolve_judge_model,
    run_train_judge,
    trained_judge_spec,
)
from judgelab.training.model_setup import TrainResult

REPO = Path(__file__).resolve().parents[2]


def cfg(**kw) -> TrainJudgeConfig:
    data = {"model": {"name": "smollm2-135m-instruct"}, "data": "gold.jsonl", "recipe": {"kind": "sft"}}
    data.update(kw)
    return TrainJudgeConfig.model_validate(data)


# ---------------------------------------------------------------------------- config
def test_mode_follows_recipe_and_contradictions_are_errors():
    assert cfg().judge_mode == "non_reasoning"
    assert cfg(recipe={"kind": "distill"}).judge_mode == "reasoning"
    assert cfg(recipe={"kind": "grpo"}).judge_mode == "reasoning"
    assert cfg(recipe={"kind": "grpo"}, mode="non_reasoning").judge_mode == "non_reasoning"
    with pytest.raises(ValidationError, match="use mode non_reasoning, or recipe distill"):
        cfg(mode="reasoning")
    with pytest.raises(ValidationError, match="use mode reasoning, or recipe sft"):
        cfg(recipe={"kind": "distill"}, mode="non_reasoning")


def test_score_regression_is_for_pointwise_templates_and_nll_loss():
    reg = {"kind": "sft", "train": {"score_regression_weight": 4.0}}
    assert cfg(recipe=reg, template="pointwise-v1").recipe.train.score_regression_weight == 4.0
    with pytest.raises(ValidationError, match="applies to pointwise judges"):
        cfg(recipe=reg, template="pairwise-v1")
    with pytest.raises(ValidationError, match="needs loss_type: nll"):
        cfg(recipe={"kind": "sft", "train": {"score_regression_weight": 1.0, "loss_type": "dft"}})


def test_rubric_guided_needs_a_rubric_template_and_vice_versa():
    cfg(recipe={"kind": "sft", "rubric_guided": True}, template="pointwise-rubric-v1")
    with pytest.raises(ValidationError, match="pointwise-rubric-v1"):
        cfg(recipe={"kind": "sft", "rubric_guided": True}, template="pointwise-v1")
    with pytest.raises(ValidationError, match="rubric_guided: true"):
        cfg(template="pointwise-rubric-v1")
    with pytest.raises(ValidationError, match="train pointwise or pairwise"):
        cfg(template="arena-v1")
    with pytest.raises(ValidationError, match="unknown judge template"):
        cfg(template="nope-v1")


def test_effort_variant_needs_the_high_effort_reference():
    with pytest.raises(ValidationError, match="needs effort_reference"):
        cfg(recipe={"kind": "distill", "trace_effort": "low"})
    cfg(recipe={"kind": "distill", "trace_effort": "low"}, effort_reference="high.jsonl")
    cfg(recipe={"kind": "distill", "trace_effort": "low", "require_effort_agreement": False})
    cfg(recipe={"kind": "distill", "trace_effort": "high"})


def test_grpo_both_orders_needs_unshuffled_even_batches():
    base = {"kind": "grpo", "require_both_orders": True,
            "train": {"per_device_train_batch_size": 8, "num_generations": 4, "shuffle_dataset": False}}
    cfg(recipe=base)
    with pytest.raises(ValidationError, match="shuffle_dataset: false"):
        cfg(recipe={**base, "train": {**base["train"], "shuffle_dataset": True}})
    with pytest.raises(ValidationError, match="holds 1 prompts"):
        cfg(recipe={**base, "train": {**base["train"], "num_generations": 8}})
    with pytest.raises(ValidationError, match="pairwise_orders: both"):
        cfg(recipe=base, pairwise_orders="given")


def test_seed_flows_to_the_trainer_once():
    assert cfg(seed=7).recipe.train.seed == 7
    assert cfg(recipe={"kind": "sft", "train": {"seed": 3}}).recipe.train.seed == 3
    assert cfg(seed=3, recipe={"kind": "sft", "train": {"seed": 3}}).recipe.train.seed == 3
    with pytest.raises(ValidationError, match="differ"):
        cfg(seed=1, recipe={"kind": "sft", "train": {"seed": 3}})


def test_unknown_keys_and_registry():
    with pytest.raises(ValidationError, match="extra"):
        cfg(recipe={"kind": "sft", "lr": 1})
    assert get_stage("train_judge").load_config_class() is TrainJudgeConfig
    assert get_stage("eval_judge").load_run().__name__ == "run_eval_judge"


@pytest.mark.parametrize("path", sorted((REPO / "experiments" / "judges").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_judge_configs_validate(path):
    text = path.read_text()
    header = text.split("\nstage:")[0]
    assert re.search(r"judgelab(\.cli)? (train-judge|eval-judge|annotate) experiments/judges/" + path.name, header), (
        "every shipped config carries its launch command")
    stage = yaml.safe_load(text)["stage"]
    load_config(path, [], schema=get_stage(stage).load_config_class())


def test_shipped_paper_configs_set_the_papers_values():
    paper = REPO / "experiments" / "judges"
    sft = load_config(paper / "paper_qwen3_8b_sft.yaml", [], schema=TrainJudgeConfig)
    assert sft.recipe.train.learning_rate == 1e-5 and sft.recipe.train.finetune == "full"
    grpo = load_config(paper / "paper_qwen3_8b_grpo.yaml", [], schema=TrainJudgeConfig)
    t = grpo.recipe.train
    assert (t.learning_rate, t.num_generations, t.temperature, t.epsilon, t.epsilon_high, t.beta) == (
        1e-6, 8, 1.0, 0.2, 0.3, 0.0)


# ---------------------------------------------------------------------------- judge spec
@pytest.mark.parametrize(
    "template,mode,think,readout,thinking",
    [
        ("pointwise-v1", "non_reasoning", "plain", "expected_only", None),
        ("pointwise-v1", "reasoning", "plain", "text+expected", None),
        ("pairwise-v1", "reasoning", "think_tags", "text", True),
        ("pairwise-v1", "non_reasoning", "think_tags", "text", False),
    ],
)
def test_trained_judge_spec_defaults(tmp_path, template, mode, think, readout, thinking):
    recipe = {"kind": "sft"} if mode == "non_reasoning" else {"kind": "distill"}
    c = cfg(recipe=recipe, template=template)
    spec = trained_judge_spec(c, tmp_path / "myjudge", tmp_path / "m", get_template(template, mode), mode, think)
    assert spec.readout == readout and spec.mode == mode and spec.template == template
    assert spec.backend.enable_thinking is thinking
    assert spec.name == "myjudge" and spec.backend.model.name == str((tmp_path / "m").resolve())
    assert spec.sampling.temperature == (0.0 if mode == "non_reasoning" else 0.7)


def test_load_trained_judge_spec_follows_a_moved_run(tmp_path):
    c = cfg()
    old = tmp_path / "old"
    spec = trained_judge_spec(c, old, old / "final", get_template("pointwise-v1"), "non_reasoning", "plain")
    new = tmp_path / "new"
    (new / "final").mkdir(parents=True)
    (new / JUDGE_SPEC_FILE).write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    loaded = load_trained_judge_spec(new)
    assert loaded.backend.model.name == str((new / "final").resolve())
    assert loaded.model_copy(update={"backend": spec.backend}) == spec
    assert resolve_judge_model(str(new)) == str((new / "final").resolve())
    assert resolve_judge_model("smollm2-135m-instruct") == "smollm2-135m-instruct"


# ---------------------------------------------------------------------------- stage flow
class CharTokenizer:
    """One token per 4 characters of the rendered chat; no think blocks in its template."""

    chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"

    def apply_chat_template(self, conv, add_generation_prompt=False, tokenize=True, **kw):
        self.kwargs = kw
        return list(range(sum(len(m["content"]) for m in conv) // 4))


@pytest.fixture
def fake_training(monkeypatch):
    """Replace model loading and training; record what the stage passes to the trainer."""
    calls: list[dict] = []

    def fake_train_sft(model, examples, spec, output_dir, **kw):
        calls.append({"kind": "sft", "model": model, "examples": list(examples), "spec": spec, **kw})
        final = Path(output_dir) / "final"
        final.mkdir(parents=True, exist_ok=True)
        return TrainResult(final, Path(output_dir), spec.max_steps or 1, 0.1, None, 1, 2, [{"loss": 1.0, "step": 1}])

    def fake_train_grpo(model, prompts, reward_funcs, spec, output_dir, **kw):
        calls.append({"kind": "grpo", "model": model, "rows": list(prompts), "rewards": reward_funcs, "spec": spec, **kw})
        final = Path(output_dir) / "final"
        final.mkdir(parents=True, exist_ok=True)
        return TrainResult(final, Path(output_dir), 1, 0.1, None, 1, 2, [])

    monkeypatch.setattr("judgelab.training.sft.train_sft", fake_train_sft)
    monkeypatch.setattr("judgelab.training.grpo.train_grpo", fake_train_grpo)
    monkeypatch.setattr("judgelab.models.tokens.load_tokenizer", lambda *a, **k: CharTokenizer())
    return calls


def char_len(instruction: str, response: str, target: str | None = None, mode: str = "non_reasoning") -> int:
    """CharTokenizer length of a pointwise-v1 prompt (+ target), as the stage measures it."""
    msgs = get_template("pointwise-v1", mode).render({"instruction": instruction, "response": response})
    if target is not None:
        msgs = [*msgs, {"role": "assistant", "content": target}]
    return len(CharTokenizer().apply_chat_template(msgs))


def write_gold(path: Path, n=6, protocol="pointwise") -> Path:
    rows = []
    for i in range(n):
        if protocol == "pointwise":
            rows.append({"id": f"r{i}", "prompt": f"prompt {i}", "responses": ["x" * (10 + 400 * (i == 0))],
                         "source": "t", "labels": {"score": i % 10, "reasoning": f"trace {i}"}})
        else:
            rows.append({"id": f"r{i}", "prompt": f"prompt {i}", "responses": ["a", "b"], "source": "t",
                         "labels": {"preference": "A" if i % 3 else "tie", "reasoning": f"Response A wins {i}"}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sft_stage_writes_examples_spec_and_skips_when_complete(tmp_path, fake_training):
    data = write_gold(tmp_path / "gold.jsonl")
    limit = char_len("prompt 1", "x" * 10, "Score: 1") + 20  # r0's 400 extra characters do not fit
    c = cfg(data=str(data), recipe={"kind": "sft", "train": {"max_steps": 3, "max_length": limit}})
    res = run_train_judge(c, tmp_path / "run")
    [call] = fake_training
    assert call["kind"] == "sft" and call["resume"] == "auto" and call["model"] == "smollm2-135m-instruct"
    # r0's long response makes prompt + target longer than max_length: dropped, counted
    assert res.skipped == {"longer_than_max_length": 1} and res.n_examples == 5 and res.n_items == 6
    assert [e.completion for e in call["examples"]] == [f"Score: {i}" for i in range(1, 6)]
    assert call["examples"][0].messages == get_template("pointwise-v1").render(
        {"instruction": "prompt 1", "response": "x" * 10})
    rows = [json.loads(x) for x in (tmp_path / "run" / "train_examples.jsonl").read_text().splitlines()]
    assert [r["target"] for r in rows] == [f"Score: {i}" for i in range(1, 6)]
    spec = load_trained_judge_spec(tmp_path / "run")
    assert spec.readout == "expected_only" and spec.backend.model.name == str((tmp_path / "run" / "final").resolve())
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["train_judge"]["labels"] == {str(i): 1 for i in range(1, 6)}
    assert (tmp_path / "run" / "train_log.jsonl").read_text().strip() == '{"loss":1.0,"step":1}'
    again = run_train_judge(c, tmp_path / "run")
    assert again.already_completed and len(fake_training) == 1 and again.n_examples == 5


def test_distill_pairwise_stage_targets_and_failure_status(tmp_path, fake_training):
    data = write_gold(tmp_path / "gold.jsonl", protocol="pairwise")
    c = cfg(data=str(data), recipe={"kind": "distill"})
    res = run_train_judge(c, tmp_path / "run")
    assert res.template == "pairwise-v1" and res.mode == "reasoning"
    assert res.skipped == {"gold_tie": 2} and res.n_examples == 8  # 4 pairs × 2 orders
    ex = fake_training[0]["examples"]
    assert ex[0].completion == "Response A wins 1\n\nVerdict: [[A]]"
    assert ex[1].completion == "Response B wins 1\n\nVerdict: [[B]]"
    assert ex[0].chat_template_kwargs == {}  # plain chat template: no enable_thinking

    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"id": "t", "prompt": "p", "responses": ["a", "b"], "source": "s",
                                 "labels": {"preference": "tie"}}) + "\n")
    with pytest.raises(DataError, match="no training examples"):
        run_train_judge(cfg(data=str(empty), recipe={"kind": "sft"}), tmp_path / "run2")
    assert json.loads((tmp_path / "run2" / "manifest.json").read_text())["status"] == "failed"


def test_grpo_stage_builds_rows_and_a_working_reward(tmp_path, fake_training):
    data = write_gold(tmp_path / "gold.jsonl")
    c = cfg(data=str(data), recipe={"kind": "grpo", "init": "base"},
            max_prompt_tokens=char_len("prompt 1", "x" * 10, mode="reasoning") + 20)
    res = run_train_judge(c, tmp_path / "run")
    [call] = fake_training
    assert res.skipped == {"prompt_too_long": 1}
    assert [r["gold_score"] for r in call["rows"]] == [1, 2, 3, 4, 5]
    [reward] = call["rewards"]
    prompts = [r["prompt"] for r in call["rows"][:2]]
    assert reward(prompts, ["thinking\nScore: 1", "Score: 9"], gold_score=[1, 2]) == [1.0, (81 - 49) / 81]
    assert load_trained_judge_spec(tmp_path / "run").readout == "text+expected"


def test_effort_filter_keeps_matching_low_effort_items(tmp_path, fake_training):
    def annotation(i, score, effort):
        return {"schema": "judgelab.annotation/v1", "id": f"r{i}", "protocol": "pointwise", "prompt": f"p{i}",
                "responses": ["resp"], "source": "t", "meta": {}, "score": score, "invalid": False,
                "reasoning": f"{effort} trace {i}", "judge": {"name": "gold", "sampling": {"reasoning_effort": effort}}}

    low = tmp_path / "low.jsonl"
    high = tmp_path / "high.jsonl"
    low.write_text("".join(json.dumps(annotation(i, s, "low")) + "\n" for i, s in enumerate([3, 4, 5, 6])))
    high.write_text("".join(json.dumps(annotation(i, s, "high")) + "\n" for i, s in enumerate([3, 9, 5])))
    c = cfg(data=str(low), effort_reference=str(high), recipe={"kind": "distill", "trace_effort": "low"})
    res = run_train_judge(c, tmp_path / "run")
    assert res.skipped == {"effort_verdict_differs": 1, "effort_not_in_reference": 1}
    assert [e.completion for e in fake_training[0]["examples"]] == ["low trace 0\n\nScore: 3", "low trace 2\n\nScore: 5"]
    wrong = cfg(data=str(high), effort_reference=str(high), recipe={"kind": "distill", "trace_effort": "low"})
    with pytest.raises(DataError, match="effort"):
        run_train_judge(wrong, tmp_path / "run2")


class ThinkTokenizer(CharTokenizer):
    """A Qwen3-style chat template: it writes <think> blocks and takes enable_thinking."""

    chat_template = "{% if enable_thinking %}<think>{% endif %}{{ reasoning }}</think>"


def test_think_template_distill_targets_and_spec(tmp_path, fake_training, monkeypatch):
    monkeypatch.setattr("judgelab.models.tokens.load_tokenizer", lambda *a, **k: ThinkTokenizer())
    data = write_gold(tmp_path / "gold.jsonl", n=3)
    res = run_train_judge(cfg(data=str(data), recipe={"kind": "distill"}), tmp_path / "run")
    ex = fake_training[0]["examples"]
    assert [e.completion for e in ex] == [f"<think>\ntrace {i}\n</think>\n\nScore: {i}" for i in range(3)]
    assert all(e.chat_template_kwargs == {"enable_thinking": True} for e in ex)
    spec = load_trained_judge_spec(res.run_dir)
    assert spec.backend.enable_thinking is True and spec.readout == "text+expected"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["train_judge"]["think_format"] == "think_tags"
    # a non-reasoning judge on the same template trains and judges with thinking off
    run_train_judge(cfg(data=str(data)), tmp_path / "run2")
    assert fake_training[1]["examples"][0].chat_template_kwargs == {"enable_thinking": False}
    assert fake_training[1]["examples"][0].completion == "Score: 0"
    assert load_trained_judge_spec(tmp_path / "run2").backend.enable_thinking is False
    # think_format: plain overrides the detection
    run_train_judge(cfg(data=str(data), recipe={"kind": "distill"}, think_format="plain"), tmp_path / "run3")
    assert fake_training[2]["examples"][0].completion == "trace 0\n\nScore: 0"
