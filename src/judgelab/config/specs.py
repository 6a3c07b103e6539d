"""Shared config sub-specs (L1): models, sampling, backends.

Every schema forbids unknown keys (``extra="forbid"``) so a typo is an error, not a silent default.
Defaults live here, once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ReasoningEffort = Literal["low", "medium", "high"]
DType = Literal["auto", "float32", "bfloat16", "float16"]


class StrictModel(BaseModel):
    """Base for every config schema: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class SamplingSpec(StrictModel):
    """How to sample one completion. Part of every cache key."""

    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1, description="None = no top-k truncation")
    max_tokens: int = Field(256, ge=1)
    seed: int | None = 0
    stop: list[str] = Field(default_factory=list)
    reasoning_effort: ReasoningEffort | None = Field(
        None, description="passed to backends that take it (gpt-oss on vLLM); ignored by others"
    )
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=20)

    @model_validator(mode="after")
    def _top_logprobs_needs_logprobs(self) -> SamplingSpec:
        if self.top_logprobs and not self.logprobs:
            raise ValueError(
                f"top_logprobs={self.top_logprobs} needs logprobs=true; set logprobs: true or top_logprobs: 0"
            )
        return self


class ModelSpec(StrictModel):
    """A model named by a prepared alias (``judgelab models list``), a local path, or a hub id."""

    name: str = Field(..., min_length=1)
    revision: str | None = None
    dtype: DType = "float32"
    device: str = Field("auto", description="'auto' = cuda if available else cpu")
    trust_remote_code: bool = False


class HFBackendSpec(StrictModel):
    """In-process transformers model."""

    kind: Literal["hf"] = "hf"
    model: ModelSpec
    batch_size: int = Field(8, ge=1)
    enable_thinking: bool | None = Field(
        None, description="passed to chat templates that take it (Qwen3); None = template default"
    )


class OpenAIBackendSpec(StrictModel):
    """Any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, hosted APIs)."""

    kind: Literal["openai"] = "openai"
    model: str = Field(..., min_length=1, description="model name as the server knows it")
    base_urls: list[str] = Field(..., min_length=1, description="requests are spread over these")
    api_key_env: str | None = Field(
        None, description="name of the environment variable holding the API key (never the key)"
    )
    concurrency: int = Field(8, ge=1, description="max requests in flight, over all base_urls")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0, description="retries on transient errors only")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay; doubles each retry")
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_urls")
    @classmethod
    def _urls_look_like_urls(cls, urls: list[str]) -> list[str]:
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"base_url {u!r} must start with http:// or https://")
        return urls

    @field_validator("api_key_env")
    @classmethod
    def _env_name_not_key(cls, v: str | None) -> str | None:
        if v is not None and (v.startswith("sk-") or len(v) > 64 or not v.replace("_", "").isalnum()):
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), "
                "not the key itself"
            )
        return v


RulesBlindCheck = Literal["topic", "rules", "length", "ending", "repetition", "stuffing", "fluency", "echo", "caps"]
RulesPaidFeature = Literal["keyword_repeats", "length", "title"]


class RulesBackendSpec(StrictModel):
    """The synthetic world's checklist gold judge (no model), or a controlled proxy built on it."""

    kind: Literal["rules"] = "rules"
    world: Literal["easy", "hard"] = "easy"
    trace: Literal["full", "brief"] = Field(
        "full",
        description="reasoning trace style: full (one line per check with quoted evidence, ~260 "
        "tokens) or brief (checks and arithmetic only, ~50 tokens; for CPU-scale reasoning judges)",
    )
    blind_to: list[RulesBlindCheck] = Field(
        default_factory=list,
        description="controlled proxy: checks it does not make (counted as passed); 'rules' = every "
        "rule check, 'caps' = the too-short / off-topic caps",
    )
    pays_for: dict[RulesPaidFeature, float] = Field(
        default_factory=dict,
        description="controlled proxy: bonus points per unit of a surface feature the gold does not "
        "reward (keyword_repeats: each topic keyword beyond the first; length: each 10 words over "
        "the limit; title: a <<title>> first line), at most 4 units each",
    )


BackendSpec = Annotated[
    Union[HFBackendSpec, OpenAIBackendSpec, RulesBackendSpec], Field(discriminator="kind")
]

__all__ = [
    "BackendSpec",
    "DType",
    "HFBackendSpec",
    "ModelSpec",
    "OpenAIBackendSpec",
    "ReasoningEffort",
    "RulesBackendSpec",
    "RulesBlindCheck",
    "RulesPaidFeature",
    "SamplingSpec",
    "StrictModel",
]
