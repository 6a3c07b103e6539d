"""The backend Protocols (L2): chat messages in, ``Completion`` out.

Backends are async and batch-friendly. ``complete_many`` is the workhorse: the hf backend batches
requests into left-padded forward passes; the openai backend fans them out under a concurrency cap.
``TokenDistributionBackend`` is the extra capability needed for expected-score rewards: the
probability of each candidate token at the position right after a given assistant prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from judgelab.config.specs import SamplingSpec
from judgelab.types import ChatMessage, Completion

ProgressFn = Callable[[int], None]
"""Called with the number of newly finished requests."""


@runtime_checkable
class Backend(Protocol):
    """Anything that completes chat conversations."""

    @property
    def identity(self) -> dict[str, Any]:
        """Stable, secret-free description used in cache keys and records (kind, model, ...)."""
        ...

    async def complete(
        self, messages: Sequence[ChatMessage], sampling: SamplingSpec
    ) -> Completion: ...

    async def complete_many(
        self,
        requests: Sequence[Sequence[ChatMessage]],
        sampling: SamplingSpec,
        progress: ProgressFn | None = None,
    ) -> list[Completion]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TokenDistributionBackend(Protocol):
    """A backend that can read the next-token distribution after an assistant prefix."""

    async def next_token_probs(
        self,
        requests: Sequence[tuple[Sequence[ChatMessage], str]],
        candidates: Sequence[str],
    ) -> list[dict[str, float]]:
        """For each (messages, assistant_prefix): P(candidate) for each candidate string.

        The prefix is appended after the chat template's assistant header; probabilities are the
        model's raw next-token probabilities (not renormalised: callers renormalise over the
        valid set and can see the mass that fell outside it).
        """
        ...


__all__ = ["Backend", "ProgressFn", "TokenDistributionBackend"]
