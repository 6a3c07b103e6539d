"""Config schemas (pydantic v2, extra='forbid') and loading with dotted overrides."""

from judgelab.config.specs import (
    BackendSpec,
    HFBackendSpec,
    ModelSpec,
    OpenAIBackendSpec,
    RulesBackendSpec,
    SamplingSpec,
    StrictModel,
)

__all__ = [
    "BackendSpec",
    "HFBackendSpec",
    "ModelSpec",
    "OpenAIBackendSpec",
    "RulesBackendSpec",
    "SamplingSpec",
    "StrictModel",
]
