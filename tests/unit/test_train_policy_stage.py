"""train-policy / eval-policy: configs (incl. every shipped one), resume housekeeping, tracking
scorer, the KL formula against an independent numpy computation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from judgelab.cli import main
from judgelab.evaluation.policy_eval import (
    EVAL_SAMPLE_SCHEMA,
    TRACKING_SCHEMA,
    PolicyScorer,
    PromptInfo,
    SampleToScore,
    compute_mean_se,
)
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.stages.eval_policy import EvalPolicyConfig, _select_steps
from judgelab.stages.train_policy import (
    SAMPLES_FILE,
    TRACKING_FILE,
    TRAIN_LOG_FILE,
    TrainPolicyConfig,
    _prepare_resume,
    checkpoint_dirs,
    grpo_prompt_rows,
    reward_judge_name,
)
from judgelab.store.jsonl import iter_jsonl, write_jsonl_atomic
from judgelab.store.rundir import RunDir
from judgelab.textblocks import extract_block
from judgelab.training.callbacks import TrackingPlan
from judgelab.training.heldout import HeldOutSampling
from judgelab.types import Completion

ROOT = Path(__file__).resolve().parents[2]
HF = {"kind": "hf", "model": {"name": "fake"}}
OPENAI = {"kind": "openai", "model": "fake", "base_urls": ["http://127.0.0.1:1/v1"]}


def base_cfg(**kw):
    data = {
        "policy": {"name": "smollm2-tiny-random"},
        "prompts": "train.jsonl",
        "eval_prompts": "test.jsonl",
        "reward": {"kind": "pointwise", "judge": {"backend": HF, "readout": "expected_only"}},
        "gold": {"backend": {"kind": "rules"}},
    }
    data.update(kw)
    return data


# ---------------------------------------------------------------------------- configs
@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*/*policy*.yaml")), ids=lambda p: p.name)
def test_shipped_policy_configs_validate_and_carry_a_launch_command(path, capsys):
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    head = path.read_text(encoding="utf-8").split("\nstage:")[0]
    assert "judgelab" in head and ("train-policy" in head or "eval-policy" in head), "launch command missing"


def test_shipped_configs_exist():
    names = {p.name for p in (ROOT / "experiments" / "paper").glob("*.yaml")}
    assert {"train_policy.yaml", "train_policy_pairwise.yaml", "train_policy_ensemble.yaml",
            "eval_policy.yaml"} <= names
    assert (ROOT / "experiments" / "cpu" / "train_policy.yaml").exists()


def test_paper_config_values():
    import yaml

    cfg = TrainPolicyConfig.model_validate(yaml.safe_load((ROOT / "experiments/paper/train_policy.yaml").read_text()))
    t = cfg.train
    assert (t.num_generations, t.learning_rate, t.beta, t.temperature, t.max_completion_length) == (8, 1e-6, 0.0, 0.7, 2048)
    s = cfg.reward.judge.sampling
    assert (s.temperature, s.top_k, s.top_p) == (0.7, 20, 0.95)  # the paper's judge sampling
    assert cfg.reward.judge.readout == "text+expected"


def test_cpu_defaults_are_small():
    cfg = TrainPolicyConfig.model_validate(base_cfg())
    t = cfg.train
    assert t.per_device_train_batch_size // t.num_generations == 2 and t.max_completion_length <= 48
    assert t.max_steps == 20 and cfg.tracking.every_steps == 5 and cfg.tracking.limit == 16
    assert t.save_total_limit is None  # checkpoints are kept for eval-policy
    assert cfg.heldout_sampling().max_new_tokens == t.max_completion_length


def test_tracking_steps_need_checkpoints():
    with pytest.raises(ValidationError, match="multiple of train.save_steps"):
        TrainPolicyConfig.model_validate(base_cfg(tracking={"every_steps": 5}, train={"save_steps": 2}))
    TrainPolicyConfig.model_validate(base_cfg(tracking={"every_steps": 4}, train={"save_steps": 2}))
    TrainPolicyConfig.model_validate(base_cfg(tracking={"enabled": False, "every_steps": 5}, train={"save_steps": 2}))


def test_one_seed():
    assert TrainPolicyConfig.model_validate(base_cfg(seed=3)).train.seed == 3
    c = TrainPolicyConfig.model_validate(base_cfg(train={"seed": 4}))
    assert c.seed == 4 and c.train.seed == 4
    with pytest.raises(ValidationError, match="differ"):
        TrainPolicyConfig.model_validate(base_cfg(seed=1, train={"seed": 2}))


def test_gold_and_extra_judges_checked():
    with pytest.raises(ValidationError, match="pointwise"):
        TrainPolicyConfig.model_validate(base_cfg(gold={"backend": OPENAI, "template": "pairwise-v1"}))
    with pytest.raises(ValidationError, match="needs a name"):
        TrainPolicyConfig.model_validate(base_cfg(tracking={"extra_judges": [{"backend": OPENAI}]}))
    with pytest.raises(ValidationError, match="unique"):
        TrainPolicyConfig.model_validate(base_cfg(tracking={"extra_judges": [{"backend": OPENAI, "name": "gold"}]}))


def test_unknown_trl_field_is_a_config_error(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    import yaml

    p.write_text(yaml.safe_dump({"stage": "train_policy", **base_cfg(train={"trl": {"use_vlm": True}})}))
    assert main(["validate", str(p)]) == 2
    assert "use_vllm" in capsys.readouterr().err


def test_reward_judge_name_and_rows():
    cfg = TrainPolicyConfig.model_validate(base_cfg())
    assert reward_judge_name(cfg.reward) == "proxy"
    cfg = TrainPolicyConfig.model_validate(base_cfg(reward={"kind": "pointwise", "judge": {"backend": HF, "name": "p1"}}))
    assert reward_judge_name(cfg.reward) == "p1"
    from judgelab.data.records import Record

    rows = grpo_prompt_rows([Record(id="a", prompt="Write.", source="t", meta={"rubric": "R"})], "sys", "rubric")
    assert rows == [{"prompt": [{"role": "system", "content": "sys"}, {"role": "user", "content": "Write."}],
                     "prompt_id": "a", "instruction": "Write.", "rubric": "R"}]


def test_eval_policy_step_selection():
    avail = {5: Path("c5"), 10: Path("c10")}
    cfg = EvalPolicyConfig(train_run="x")
    assert _select_steps(cfg, avail) == [0, 5, 10]
    assert _select_steps(EvalPolicyConfig(train_run="x", steps=[10, 0]), avail) == [0, 10]
    from judgelab.errors import ConfigError

    with pytest.raises(ConfigError, match="no checkpoint"):
        _select_steps(EvalPolicyConfig(train_run="x", steps=[7]), avail)


def test_tracking_plan_due():
    plan = TrackingPlan(prompts=[], sampling=HeldOutSampling(max_new_tokens=4), every_steps=5, done_steps={0, 5})
    assert [s for s in range(12) if plan.due(s, final=False)] == [10]
    assert plan.due(12, final=True) and not plan.due(5, final=True)


# ---------------------------------------------------------------------------- resume housekeeping
def test_prepare_resume_drops_lost_log_rows_and_orphan_samples(tmp_path):
    cfg = TrainPolicyConfig.model_validate(base_cfg())
    run = RunDir.open(tmp_path / "run", cfg, stage="train_policy")
    ckpts = run.file("checkpoints")
    for step in (2, 4):
        (ckpts / f"checkpoint-{step}").mkdir(parents=True)
        (ckpts / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (ckpts / "final").mkdir()
    assert [s for s, _ in checkpoint_dirs(ckpts)] == [2, 4]
    write_jsonl_atomic(run.file(TRAIN_LOG_FILE), [{"step": s, "loss": 0.1} for s in range(1, 7)])
    write_jsonl_atomic(run.file(TRACKING_FILE), [{"step": 0}, {"step": 4}])
    write_jsonl_atomic(run.file(SAMPLES_FILE), [{"step": 0, "prompt_id": "a"}, {"step": 4, "prompt_id": "a"},
                                                 {"step": 6, "prompt_id": "a"}])
    resume_from, done = _prepare_resume(run, ckpts)
    assert resume_from is not None and resume_from.endswith("checkpoint-4")
    assert done == {0, 4}
    assert [r["step"] for r in iter_jsonl(run.file(TRAIN_LOG_FILE))] == [1, 2, 3, 4]
    assert [r["step"] for r in iter_jsonl(run.file(SAMPLES_FILE))] == [0, 4]


# ---------------------------------------------------------------------------- scoring
def test_compute_mean_se_hand_computed():
    mean, se, bad = compute_mean_se([1.0, None, 3.0, 5.0])
    assert mean == 3.0 and bad == 0.25
    assert se == pytest.approx(math.sqrt(4.0 / 3))  # sample var of (1,3,5) = 4; se = sqrt(4/3)
    assert compute_mean_se([2.0]) == (2.0, None, 0.0)
    assert compute_mean_se([None]) == (None, None, 1.0)


class Scripted:
    def __init__(self, script):
        self.script = script

    @property
    def identity(self):
        return {"kind": "fake"}

    async def complete(self, messages, sampling):
        return (await self.complete_many([messages], sampling))[0]

    async def complete_many(self, requests, sampling, progress=None):
        return [Completion(text=self.script(m[-1]["content"]), finish_reason="stop") for m in requests]

    async def aclose(self):
        pass


def word_judge(name, offset=0):
    def script(u):
        r = extract_block(u, "response")
        return "no idea" if "???" in r else f"Score: {min(9, len(r.split()) + offset)}"
    return Judge(JudgeSpec.model_validate({"backend": OPENAI, "name": name}), backend=Scripted(script))


PROMPTS = {p: PromptInfo(p, f"Write about {p}.") for p in ("a", "b", "c")}


def test_scorer_pointwise_record_matches_the_contract():
    scorer = PolicyScorer(prompts=PROMPTS, proxy=word_judge("proxy"), proxy_kind="pointwise",
                          gold=word_judge("gold", offset=1), extra={"judge2": word_judge("j2", offset=2)})
    samples = [SampleToScore("a", "one two", 2, "stop"), SampleToScore("b", "???", 1, "length"),
               SampleToScore("c", "one two three four", 4, "stop")]
    point = scorer.score(5, samples, kl_per_token=0.01, kl_per_sequence=0.03)
    rec = json.loads(json.dumps(point.record()))
    assert rec["schema"] == TRACKING_SCHEMA and rec["step"] == 5
    m = rec["metrics"]
    assert m["reward/proxy"] == 3.0 and m["judge/invalid_rate"] == pytest.approx(1 / 3)
    assert m["reward/proxy_se"] == pytest.approx(1.0)  # values 2, 4: sd = sqrt(2), se = 1
    assert m["reward/gold"] == 4.0 and m["gold/invalid_rate"] == pytest.approx(1 / 3)
    assert m["reward/judge2"] == 5.0 and "reward/judge2_se" in m and "judge2/invalid_rate" in m
    assert m["kl/policy_init"] == 0.03 and m["kl/policy_init_token"] == 0.01
    assert m["length/mean"] == pytest.approx(7 / 3)
    assert rec["per_prompt"] == {"prompt_ids": ["a", "b", "c"], "proxy": [2.0, None, 4.0],
                                 "gold": [3.0, None, 5.0], "judge2": [4.0, None, 6.0]}
    row = point.samples[0]
    assert row["schema"] == EVAL_SAMPLE_SCHEMA and row["step"] == 5 and row["prompt"] == "Write about a."
    assert {"response", "proxy", "gold", "gold_reasoning"} <= set(row)


def test_scorer_proxy_limit_scores_the_proxy_on_the_first_n_only():
    calls = []

    def counting(u):
        calls.append(extract_block(u, "response"))
        return f"Score: {len(extract_block(u, 'response').split())}"

    proxy = Judge(JudgeSpec.model_validate({"backend": OPENAI, "name": "proxy"}), backend=Scripted(counting))
    scorer = PolicyScorer(prompts=PROMPTS, proxy=proxy, proxy_kind="pointwise", gold=word_judge("gold"), proxy_limit=2)
    samples = [SampleToScore("a", "one two", 2, "stop"), SampleToScore("b", "one two three four", 4, "stop"),
               SampleToScore("c", "x y z", 3, "stop")]
    rec = scorer.score(1, samples).record()
    assert sorted(calls) == ["one two", "one two three four"]  # "x y z" never reaches the proxy
    m = rec["metrics"]
    assert m["reward/proxy"] == 3.0 and m["judge/invalid_rate"] == 0.0 and m["proxy/n"] == 2
    assert m["reward/gold"] == 3.0  # the gold scores all three: (2 + 4 + 3) / 3
    assert rec["per_prompt"]["proxy"] == [2.0, 4.0, None] and rec["per_prompt"]["gold"] == [2.0, 4.0, 3.0]
    # issue 11: the gold on the proxy's two prompts, beside the gold on all three
    assert m["reward/gold@proxy_prompts"] == 3.0 and m["reward/gold@proxy_prompts_se"] == pytest.approx(1.0)
    samples[1] = SampleToScore("b", "one two three four five six", 6, "stop")
    m = scorer.score(2, samples).record()["metrics"]
    assert m["reward/gold"] == pytest.approx(11 / 3) and m["reward/gold@proxy_prompts"] == 4.0


def test_scorer_pairwise_proxy_is_the_win_value_against_step0():
    def longer(u):
        a, b = extract_block(u, "response_a"), extract_block(u, "response_b")
        return "Verdict: [[A]]" if len(a) > len(b) else "Verdict: [[B]]"
    judge = Judge(JudgeSpec.model_validate({"backend": OPENAI, "template": "pairwise-v1"}), backend=Scripted(longer))
    scorer = PolicyScorer(prompts=PROMPTS, proxy=judge, proxy_kind="pairwise", gold=word_judge("gold"))
    base = {"a": "one two", "b": "one two", "c": "same"}
    samples = [SampleToScore("a", "one two three", 3, "stop"), SampleToScore("b", "one", 1, "stop"),
               SampleToScore("c", "same", 1, "stop")]
    point = scorer.score(3, samples, baseline=base)
    assert point.per_prompt["proxy"] == [1.0, 0.0, 0.5]
    from judgelab.errors import DataError

    with pytest.raises(DataError, match="step 0"):
        scorer.score(3, samples)


# ---------------------------------------------------------------------------- KL formula
def test_token_kl_matches_numpy():
    torch = pytest.importorskip("torch")
    from judgelab.training.heldout import token_kl

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 11)) * 2, rng.normal(size=(5, 11))

    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    p, q = softmax(a), softmax(b)
    expected = (p * np.log(p / q)).sum(axis=-1)
    got = token_kl(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.allclose(token_kl(torch.tensor(a), torch.tensor(a)).numpy(), 0.0, atol=1e-6)


def test_generation_config_writes_off_as_neutral_values():
    """transformers fills None fields with its defaults (top_k=50): 'off' must survive that merge."""
    pytest.importorskip("transformers")
    from transformers import GenerationConfig

    from judgelab.training.heldout import generation_config

    cfg = generation_config(HeldOutSampling(max_new_tokens=8, temperature=0.7, top_k=0, top_p=1.0), [2], 0)
    cfg.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)  # what generate() does
    assert (cfg.do_sample, cfg.temperature, cfg.top_k, cfg.top_p, cfg.repetition_penalty) == (True, 0.7, 0, 1.0, 1.0)
    greedy = generation_config(HeldOutSampling(max_new_tokens=8, temperature=0.0, top_k=20), [2], 0)
    assert not greedy.do_sample and greedy.max_new_tokens == 8
