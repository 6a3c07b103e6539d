"""Separate a model's reasoning from its final answer.

Reasoning may arrive in a dedicated field (``reasoning`` on vLLM ≥0.10 / gpt-oss,
``reasoning_content`` on vLLM's older parsers, DeepSeek and SGLang) or inline as
``<think>...</think>`` (Qwen3, DeepSeek-R1 distills, raw llama.cpp output). An unterminated
``<think>`` (the model ran out of tokens while thinking) yields all text as reasoning and an empty
answer, so a verdict is never parsed out of half-finished thoughts.
"""

from __future__ import annotations

import re

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def split_reasoning(text: str, reasoning_field: str | None = None) -> tuple[str, str | None]:
    """Return ``(answer, reasoning)``.

    ``reasoning_field`` (from the server) wins when present; inline think blocks are still
    stripped from the answer so they can never be parsed as a verdict.
    """
    answer = text or ""
    inline: list[str] = []
    # Templates like Qwen3's may put "<think>" in the prompt, so the completion holds only "...</think>".
    if _THINK_CLOSE in answer and _THINK_OPEN not in answer.split(_THINK_CLOSE, 1)[0]:
        head, answer = answer.split(_THINK_CLOSE, 1)
        inline.append(head)
    for m in re.finditer(r"<think>(.*?)</think>", answer, flags=re.S):
        inline.append(m.group(1))
    answer = re.sub(r"<think>.*?</think>", "", answer, flags=re.S)
    if _THINK_OPEN in answer:  # unterminated: everything after it is reasoning
        answer, tail = answer.split(_THINK_OPEN, 1)
        inline.append(tail)
    answer = answer.strip()
    inline_text = "\n".join(s.strip() for s in inline if s.strip()) or None
    if reasoning_field:
        return answer, reasoning_field.strip()
    return answer, inline_text


__all__ = ["split_reasoning"]
