"""Reading TRL's reward-function inputs: completions as strings, whatever TRL's format.

TRL passes ``completions`` as plain strings (standard datasets) or as lists of chat messages
(conversational datasets: ``[{"role": "assistant", "content": ...}]``). Reward functions in
``judgelab.rewards`` call ``completion_text`` so they work with both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from judgelab.errors import DataError


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or the content of its last message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], Mapping):
        content = completion[-1].get("content", "")
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # content blocks: [{"type": "text", "text": ...}, ...]
            return "".join(b.get("text", "") for b in content if isinstance(b, Mapping))
    raise DataError(
        f"unrecognised completion format: {type(completion).__name__}",
        "expected a string or a list of chat messages",
    )


__all__ = ["completion_text"]
