"""Untrusted-text delimiters (L1).

A response under judgement is untrusted: it may contain "Score: 9", "[[A>>B]]" or a fake
end-of-response marker. Every untrusted block is wrapped in tags carrying a per-request nonce,
``<response-3f9c2a1b>...</response-3f9c2a1b>``. The response cannot close a tag whose nonce it
does not know. The nonce comes from the caller: the judge templates derive it from the template
hash and the inputs (``judgelab.judges.templates.derive_nonce``, reproducible prompts) and derive
another if a text happens to contain it; ``wrap_block`` refuses a text that contains its nonce.

Non-judge consumers (the rules gold backend) use ``extract_block`` to get the inputs back out of
a rendered judge prompt.
"""

from __future__ import annotations

import re

_TAG_RE = r"[a-z][a-z0-9_]*"


def wrap_block(tag: str, text: str, nonce: str) -> str:
    """``<tag-nonce>\\ntext\\n</tag-nonce>``; raises if the text contains the nonce."""
    if not re.fullmatch(_TAG_RE, tag):
        raise ValueError(f"bad block tag {tag!r}")
    if nonce in text:
        raise ValueError("untrusted text contains the nonce; derive another one (templates.derive_nonce)")
    return f"<{tag}-{nonce}>\n{text}\n</{tag}-{nonce}>"


def extract_block(rendered: str, tag: str) -> str | None:
    """The content of the first ``<tag-NONCE>...</tag-NONCE>`` block (same nonce both ends)."""
    m = re.search(rf"<{tag}-([0-9a-f]+)>\n(.*?)\n</{tag}-\1>", rendered, flags=re.S)
    return m.group(2) if m else None


__all__ = ["extract_block", "wrap_block"]
