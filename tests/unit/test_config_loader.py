from typing import Literal

import pytest

from judgelab.config.loader import apply_overrides, load_config
from judgelab.config.specs import OpenAIBackendSpec, SamplingSpec, StrictModel
from judgelab.errors import ConfigError


class Inner(StrictModel):
    lr: float = 1e-5
    steps: int = 10


class Cfg(StrictModel):
    stage: Literal["demo"] = "demo"
    policy: Inner = Inner()
    tags: list[str] = []


def test_overrides_parse_yaml_scalars():
    d = apply_overrides({"policy": {"lr": 1}}, ["policy.lr=1e-6", "policy.steps=3", "flag=true", "tags=[a, b]"])
    assert d == {"policy": {"lr": 1e-6, "steps": 3}, "flag": True, "tags": ["a", "b"]}


def test_override_list_index():
    assert apply_overrides({"xs": [{"a": 1}, {"a": 2}]}, ["xs.1.a=5"]) == {"xs": [{"a": 1}, {"a": 5}]}


def test_override_without_equals():
    with pytest.raises(ConfigError, match="no '='"):
        apply_overrides({}, ["policy.lr"])


def test_load_config_validates_overrides_like_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("stage: demo\npolicy:\n  lr: 0.001\n")
    cfg = load_config(p, ["policy.steps=4"], schema=Cfg)
    assert cfg.policy.lr == 0.001 and cfg.policy.steps == 4
    with pytest.raises(ConfigError) as ei:
        load_config(p, ["policy.stepz=4"], schema=Cfg)
    assert "policy.stepz: unknown key" in ei.value.message
    with pytest.raises(ConfigError) as ei:
        load_config(p, ["policy.steps=many"], schema=Cfg)
    assert "policy.steps" in ei.value.message and "'many'" in ei.value.message


def test_bad_yaml_and_non_mapping(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p, schema=Cfg)
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(p, schema=Cfg)


def test_sampling_spec_rules():
    with pytest.raises(ValueError, match="needs logprobs=true"):
        SamplingSpec(top_logprobs=5)
    assert SamplingSpec(logprobs=True, top_logprobs=5).top_logprobs == 5


def test_api_key_env_must_be_a_name():
    with pytest.raises(ValueError, match="NAME of an environment variable"):
        OpenAIBackendSpec(model="m", base_urls=["http://x/v1"], api_key_env="sk-abcdef123")
    with pytest.raises(ValueError, match="http"):
        OpenAIBackendSpec(model="m", base_urls=["localhost:8000"])
