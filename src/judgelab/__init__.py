"""judgelab: LLM judges as rewards in RL post-training for non-verifiable domains.

``import judgelab`` stays light: torch, transformers, trl and peft are imported only by the
``hf`` backend, ``training/`` and model provisioning, when they are used.
"""

from judgelab.errors import (
    BackendError,
    ConfigError,
    DataError,
    InvalidOutputBudgetExceeded,
    JudgelabError,
    MissingDependencyError,
    RunDirError,
)
from judgelab.types import ChatMessage, Completion, TokenLogprob, Usage

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ChatMessage",
    "Completion",
    "ConfigError",
    "DataError",
    "InvalidOutputBudgetExceeded",
    "JudgelabError",
    "MissingDependencyError",
    "RunDirError",
    "TokenLogprob",
    "Usage",
    "__version__",
]
