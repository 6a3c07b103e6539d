"""Tokenizer-only helpers (L1): load a model's tokenizer, count tokens, read its thinking format.

Used where a stage needs token lengths without loading weights: ``train-judge`` drops examples
that do not fit ``max_length`` (TRL would cut the *end* of the sequence — the verdict) and picks
the judge's thinking format; ``eval-judge`` reports the mean reasoning length in tokens.
transformers is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from judgelab.errors import BackendError
from judgelab.models.resolve import resolve_model
from judgelab.types import ChatMessage

ThinkFormat = Literal["think_tags", "plain"]


@lru_cache(maxsize=8)
def load_tokenizer(name: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    """The tokenizer of an alias, local folder or hub id (resolved like ``load_causal_lm``)."""
    from transformers import AutoTokenizer

    resolved = resolve_model(name, revision)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if Path(resolved).is_dir():
        kwargs["local_files_only"] = True
    elif revision is not None:
        kwargs["revision"] = revision
    try:
        return AutoTokenizer.from_pretrained(resolved, **kwargs)
    except OSError as e:
        raise BackendError(
            f"could not load the tokenizer of {name!r} ({resolved}): {e}",
            hint="prepare the model (`judgelab models prepare ALIAS`) or give a local folder",
        ) from e


def count_tokens(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Tokens per text (no special tokens added)."""
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False)
    return [len(ids) for ids in enc["input_ids"]]


def _template_text(tokenizer: Any) -> str:
    tpl = getattr(tokenizer, "chat_template", None)
    if isinstance(tpl, Mapping):
        return "\n".join(str(v) for v in tpl.values())
    return tpl or ""


def think_format(tokenizer: Any) -> ThinkFormat:
    """``think_tags`` when the chat template writes ``<think>…</think>`` blocks (Qwen3-style),
    else ``plain`` (the reasoning is plain text before the verdict line)."""
    text = _template_text(tokenizer)
    return "think_tags" if "<think>" in text and "</think>" in text else "plain"


def chat_lengths(
    tokenizer: Any,
    conversations: Sequence[Sequence[ChatMessage]],
    completions: Sequence[str | None],
    chat_template_kwargs: Mapping[str, Any] | None = None,
) -> list[int]:
    """Token length of each rendered prompt (+ assistant completion when not None), as the chat
    template renders it for training (prompt with the generation header when no completion)."""
    kwargs = dict(chat_template_kwargs or {})
    out: list[int] = []
    for msgs, completion in zip(conversations, completions, strict=True):
        conv = [dict(m) for m in msgs]
        if completion is None:
            ids = tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=True, **kwargs)
        else:
            conv.append({"role": "assistant", "content": completion})
            ids = tokenizer.apply_chat_template(conv, tokenize=True, **kwargs)
        if isinstance(ids, Mapping) or hasattr(ids, "keys"):  # BatchEncoding in newer transformers
            ids = ids["input_ids"]
        out.append(len(ids))
    return out


__all__ = ["ThinkFormat", "chat_lengths", "count_tokens", "load_tokenizer", "think_format"]
