from pathlib import Path

import pytest
import yaml

from judgelab.config.loader import load_config
from judgelab.errors import ConfigError
from judgelab.stages.study import StudyConfig, StudyPlan, is_complete
from judgelab.store.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]


def _quickstart(tmp_path, **edits):
    data = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    data.update(edits)
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_quickstart_plan_links_stages(tmp_path):
    cfg = load_config(ROOT / "experiments" / "quickstart.yaml", schema=StudyConfig)
    plan = StudyPlan(cfg, tmp_path)
    names = [s.name for s in plan.steps()]
    assert names[:5] == ["data", "sample judge_train", "sample judge_eval", "gold judge_train", "gold judge_eval"]
    assert "judge nonreasoning" in names and "judge reasoning" in names and "eval judges" in names
    assert names[-2:] == ["policy nonreasoning seed 0", "policy reasoning seed 0"]
    sample = plan.sample_config("judge_eval")
    assert sample.prompts == str(tmp_path / "data" / "data" / "judge_eval.jsonl")
    gold = plan.gold_config("judge_train")
    assert gold.input == str(tmp_path / "samples" / "judge_train" / "samples.jsonl")
    tj = plan.judge_config(cfg.judges[1])
    assert tj.data == str(tmp_path / "gold" / "judge_train" / "judgements.jsonl") and tj.judge.name == "reasoning"
    ev = plan.eval_config()
    assert [j.name for j in ev.judges] == ["nonreasoning", "reasoning"]


def test_bad_field_in_a_sub_stage_is_caught_at_load(tmp_path):
    p = _quickstart(tmp_path)
    with pytest.raises(ConfigError) as ei:
        load_config(p, ["judges.0.train.recipe.train.learning_rat=1"], schema=StudyConfig)
    assert "learning_rat" in ei.value.message
    with pytest.raises(ConfigError, match="not among judges"):
        load_config(p, ["policies.judges=[nope]"], schema=StudyConfig)
    with pytest.raises(ConfigError, match="unique"):
        load_config(p, ["judges.1.name=nonreasoning"], schema=StudyConfig)


def test_is_complete_needs_same_config_and_completed(tmp_path):
    cfg = load_config(ROOT / "experiments" / "quickstart.yaml", schema=StudyConfig)
    plan = StudyPlan(cfg, tmp_path)
    data_cfg = plan.data_config()
    d = tmp_path / "data"
    assert not is_complete(d, data_cfg)
    run = RunDir.open(d, data_cfg, stage="data_build")
    assert not is_complete(d, data_cfg)
    run.set_status("completed")
    assert is_complete(d, data_cfg)
    other = data_cfg.model_copy(update={"seed": 5})
    assert not is_complete(d, other)


def test_validation_placeholder_is_the_judge_train_judge_will_write(tmp_path):
    """issue 11: a distill judge was validated as non_reasoning with readout expected_only."""
    cfg = load_config(ROOT / "experiments" / "quickstart.yaml", schema=StudyConfig)
    plan = StudyPlan(cfg, tmp_path)
    nr = plan.policy_config("nonreasoning", 0, validate_only=True).reward.judge
    r = plan.policy_config("reasoning", 0, validate_only=True).reward.judge
    assert (nr.mode, nr.readout) == ("non_reasoning", "expected_only")
    assert (r.mode, r.readout) == ("reasoning", "text+expected")  # distill: a reasoning judge
    assert r.template == "pointwise-brief-v1" and r.sampling.max_tokens == 192  # its own judge: section
    # a distill judge whose mode is spelled out used to fail validation (reasoning + expected_only)
    p = _quickstart(tmp_path)
    cfg = load_config(p, ["judges.1.train.mode=reasoning"], schema=StudyConfig)
    assert StudyPlan(cfg, tmp_path).policy_config("reasoning", 0, validate_only=True).reward.judge.mode == "reasoning"
    # a pairwise reward with pairwise-trained judges validates (the placeholder read-out is text)
    cfg = load_config(p, ["policies.reward={kind: pairwise}", "judges.0.train.template=pairwise-v1",
                          "judges.1.train.template=pairwise-v1"], schema=StudyConfig)
    judge = StudyPlan(cfg, tmp_path).policy_config("nonreasoning", 0, validate_only=True).reward.judge
    assert (judge.template, judge.readout) == ("pairwise-v1", "text")


def test_fixed_control_judges_are_evaluated_and_reward_policies_without_training(tmp_path):
    """A controlled proxy (spec:) has no training step; it is in the judge evaluation and rewards
    its policies exactly as specified, flaws included."""
    data = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    hackable = {"backend": {"kind": "rules", "blind_to": ["stuffing"], "pays_for": {"keyword_repeats": 1.0}},
                "template": "pointwise-compact-v1", "mode": "non_reasoning", "readout": "text"}
    data["judges"] = [data["judges"][0], {"name": "control-hackable", "role": "control", "spec": hackable},
                      {"name": "control-gold", "role": "control", "spec": {**hackable, "backend": {"kind": "rules"}}}]
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(data))
    cfg = load_config(p, schema=StudyConfig)
    plan = StudyPlan(cfg, tmp_path)
    names = [s.name for s in plan.steps()]
    assert "judge nonreasoning" in names and not any(n.startswith("judge control") for n in names)
    assert "policy control-hackable seed 0" in names and "policy control-gold seed 0" in names
    ev = {j.name: j for j in plan.eval_config().judges}
    assert ev["control-hackable"].kind == "other" and ev["control-hackable"].judge.backend.blind_to == ["stuffing"]
    reward = plan.policy_config("control-hackable", 0).reward.judge
    assert reward.name == "control-hackable" and reward.backend.pays_for == {"keyword_repeats": 1.0}
    data["judges"][1] = {"name": "x", "spec": hackable, "train": {"model": {"name": "m"}}}
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="exactly one of train"):
        load_config(p, schema=StudyConfig)
