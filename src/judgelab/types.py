"""Core value types shared by every layer (L0). Plain dataclasses: cheap to build, easy to serialise.

Vocabulary (DESIGN.md): a *verdict* is a parsed decision; a *judgement* is verdict + raw text +
reasoning + metadata; a *battle* is one pairwise comparison judged in both orders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict

Role = Literal["system", "user", "assistant"]


class ChatMessage(TypedDict):
    role: Role
    content: str


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives at that position."""

    token: str
    logprob: float
    top_logprobs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """What a backend returns for one chat request.

    ``text`` is the final answer only; ``reasoning`` holds the model's thinking when the backend
    exposes it (``reasoning`` / ``reasoning_content`` fields, or inline ``<think>...</think>``).
    ``tokens`` is set when logprobs were requested.
    """

    text: str
    reasoning: str | None = None
    finish_reason: str | None = None
    tokens: tuple[TokenLogprob, ...] | None = None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    latency_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["ChatMessage", "Completion", "Role", "TokenLogprob", "Usage"]
