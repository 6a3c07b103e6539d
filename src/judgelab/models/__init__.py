"""Local model provisioning (L1): aliases prepared into ``$JUDGELAB_HOME/models``, name resolution
and loading. Importing this package does not import torch; ``load_causal_lm`` and the builders do.
"""

from judgelab.models.loading import LoadedModel, load_causal_lm
from judgelab.models.registry import (
    MODEL_RECIPES,
    PreparedModel,
    cli_list,
    cli_prepare,
    judgelab_home,
    known_aliases,
    list_prepared,
    prepare_model,
)
from judgelab.models.resolve import resolve_model
from judgelab.models.shipped import find_smollm2_gguf

__all__ = [
    "MODEL_RECIPES",
    "LoadedModel",
    "PreparedModel",
    "cli_list",
    "cli_prepare",
    "find_smollm2_gguf",
    "judgelab_home",
    "known_aliases",
    "list_prepared",
    "load_causal_lm",
    "prepare_model",
    "resolve_model",
]
