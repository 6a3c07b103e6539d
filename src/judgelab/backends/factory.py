"""Build a backend from its spec, importing only what that backend needs."""

from __future__ import annotations

from judgelab.backends.base import Backend
from judgelab.config.specs import BackendSpec, HFBackendSpec, OpenAIBackendSpec, RulesBackendSpec


def make_backend(spec: BackendSpec) -> Backend:
    """``hf`` → in-process transformers; ``openai`` → OpenAI-compatible server; ``rules`` → checklist gold."""
    if isinstance(spec, HFBackendSpec):
        from judgelab.backends.hf import HFBackend

        return HFBackend(spec)
    if isinstance(spec, OpenAIBackendSpec):
        from judgelab.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(spec)
    if isinstance(spec, RulesBackendSpec):
        from judgelab.backends.rules import RulesBackend

        return RulesBackend(spec)
    raise TypeError(f"unknown backend spec {type(spec).__name__}")


__all__ = ["make_backend"]
