"""The ``rules`` backend (L2): the synthetic world's checklist gold, behind the same Protocol as
any LLM backend.

It receives the chat messages of a *rendered judge prompt* and reads its inputs back out of the
nonce-tagged blocks (``judgelab.textblocks``): ``instruction``, then ``response`` (pointwise) or
``response_a`` + ``response_b`` (pairwise / arena); ``rubric`` is ignored (the checklist comes from
the instruction itself). The instruction must be a synthetic-world instruction; it is parsed from
its text, so this judge sees exactly what an LLM judge sees.

It returns a ``Completion`` whose ``reasoning`` is the step-by-step checklist trace (each check
with its evidence, then the arithmetic) and whose ``text`` is the verdict line, in the grammar
the parsers expect:

- pointwise: ``Score: N`` (integer in the prompt's range, default 0–9);
- pairwise:  ``Verdict: [[A]]`` / ``Verdict: [[B]]``;
- arena:     ``Verdict: [[A>>B]]`` / ``[[A>B]]`` / ``[[A=B]]`` / ``[[B>A]]`` / ``[[B>>A]]``;
- rubric:    ``Rubric:`` and the numbered checklist (when only an instruction block is given).

**Which form to emit** (the contract with judge templates):

1. A line ``format: <protocol>`` or ``format: pointwise <lo>-<hi>`` anywhere *outside* the tagged
   blocks wins (``FORMAT_HINT_RE``; protocol ∈ pointwise, pairwise, arena, rubric).
2. Otherwise, from the blocks present: ``response_a`` + ``response_b`` → arena if the prompt text
   outside the blocks shows the five-level grammar (``[[A>>B]]``), else pairwise; ``response`` →
   pointwise; ``instruction`` alone → rubric.
3. The pointwise range comes from the hint, else from "scale from LO (worst) to HI (best)" /
   "integer from LO to HI" outside the blocks, else 0–9. The 0–9 gold is mapped linearly
   (``LO + round(score × (HI − LO) / 9)``) and the mapping is written in the trace.

Text inside the blocks is never searched for hints, so a response cannot switch the format.
Sampling settings are ignored: the checklist is deterministic (``temperature`` has no effect).
``next_token_probs`` is one-hot on the verdict, so the gold can also serve as an oracle reward.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from judgelab.backends.base import ProgressFn
from judgelab.config.specs import RulesBackendSpec, SamplingSpec
from judgelab.data.world.gold import (
    GOLD_VERSION,
    ProxyFlaws,
    TraceStyle,
    WorldVariant,
    compare_responses,
    round_half_up,
    score_response,
)
from judgelab.data.world.instruction import InstructionParseError, parse_instruction
from judgelab.errors import BackendError
from judgelab.textblocks import extract_block
from judgelab.types import ChatMessage, Completion

Protocol = Literal["pointwise", "pairwise", "arena", "rubric"]

FORMAT_HINT_RE = re.compile(
    r"^[ \t]*format:[ \t]*(?P<protocol>pointwise|pairwise|arena|rubric)"
    r"(?:[ \t]+(?P<lo>-?\d+)[ \t]*-[ \t]*(?P<hi>-?\d+))?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
"""The optional protocol hint line a template may carry outside its blocks."""

_RANGE_RES = (
    re.compile(r"scale from (-?\d+) \(worst\) to (-?\d+) \(best\)", re.IGNORECASE),
    re.compile(r"integer (?:scale )?from (-?\d+) to (-?\d+)", re.IGNORECASE),
)
_ARENA_MARK = "[[A>>B]]"
_BLOCK_TAGS = ("instruction", "response", "response_a", "response_b", "rubric")
DEFAULT_RANGE = (0, 9)
GOLD_MAX = 9


@dataclass(frozen=True)
class JudgeRequest:
    """What the rules backend read out of a rendered prompt."""

    protocol: Protocol
    instruction: str
    response: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    score_range: tuple[int, int] = DEFAULT_RANGE


def _nonce_of(rendered: str) -> str | None:
    m = re.search(r"<instruction-([0-9a-f]+)>\n", rendered)
    return m.group(1) if m else None


def _block(rendered: str, tag: str, nonce: str) -> str | None:
    m = re.search(rf"<{tag}-{nonce}>\n(.*?)\n</{tag}-{nonce}>", rendered, flags=re.DOTALL)
    return m.group(1) if m else None


def read_request(messages: Sequence[ChatMessage]) -> JudgeRequest:
    """Find the blocks and the protocol in a rendered judge prompt (see the module docstring)."""
    rendered = "\n".join(m["content"] for m in messages if isinstance(m.get("content"), str))
    instruction = extract_block(rendered, "instruction")
    nonce = _nonce_of(rendered)
    if instruction is None or nonce is None:
        raise BackendError(
            "rules backend: the prompt has no <instruction-…> block",
            "render the prompt with a judge template that wraps inputs with textblocks.wrap_block",
        )
    blocks = {tag: _block(rendered, tag, nonce) for tag in _BLOCK_TAGS}
    frame = rendered
    for tag in _BLOCK_TAGS:
        frame = re.sub(rf"<{tag}-{nonce}>\n.*?\n</{tag}-{nonce}>", " ", frame, flags=re.DOTALL)

    hint = FORMAT_HINT_RE.search(frame)
    protocol: Protocol
    if hint:
        protocol = hint.group("protocol").lower()  # type: ignore[assignment]
    elif blocks["response_a"] is not None and blocks["response_b"] is not None:
        protocol = "arena" if _ARENA_MARK in frame else "pairwise"
    elif blocks["response"] is not None:
        protocol = "pointwise"
    else:
        protocol = "rubric"

    lo, hi = DEFAULT_RANGE
    if hint and hint.group("lo") is not None:
        lo, hi = int(hint.group("lo")), int(hint.group("hi"))
    else:
        for rx in _RANGE_RES:
            m = rx.search(frame)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                break
    if hi <= lo:
        raise BackendError(f"rules backend: bad score range {lo}-{hi} in the prompt", "the range must be LO-HI with LO < HI")

    need = {"pointwise": ("response",), "pairwise": ("response_a", "response_b"), "arena": ("response_a", "response_b"), "rubric": ()}
    missing = [t for t in need[protocol] if blocks[t] is None]
    if missing:
        raise BackendError(
            f"rules backend: a {protocol} prompt needs the block(s) {missing}",
            "check the judge template's blocks and its format: hint",
        )
    return JudgeRequest(
        protocol=protocol,
        instruction=instruction,
        response=blocks["response"],
        response_a=blocks["response_a"],
        response_b=blocks["response_b"],
        score_range=(lo, hi),
    )


def map_score(score: int, lo: int, hi: int) -> int:
    """Map a 0–9 gold score linearly onto ``lo``–``hi``."""
    return lo + round_half_up(score * (hi - lo) / GOLD_MAX)


def _rubric(instruction: str) -> str:
    ins = parse_instruction(instruction)
    items = [
        "The response is on topic: it mentions " + " or ".join(f'"{k}"' for k in ins.keywords) + "."
    ]
    items += [c.render() for c in ins.constraints]
    limit = f"{ins.min_words} to {ins.max_words}" if ins.max_words is not None else f"at least {ins.min_words}"
    items.append(f"It has {limit} words and ends with a complete sentence.")
    items.append("It does not repeat itself, overuse a word, list bare words, or copy the instruction.")
    return "Rubric:\n" + "\n".join(f"{i}. {t}" for i, t in enumerate(items, start=1))


def judge(
    request: JudgeRequest, world: WorldVariant = "easy", trace: TraceStyle = "full",
    flaws: ProxyFlaws | None = None,
) -> tuple[str, str | None]:
    """(verdict text, reasoning trace) for one request; ``flaws`` make it a controlled proxy."""
    try:
        if request.protocol == "pointwise":
            assert request.response is not None
            g = score_response(request.instruction, request.response, world=world, trace=trace, flaws=flaws)
            lo, hi = request.score_range
            if (lo, hi) == DEFAULT_RANGE:
                return f"Score: {g.score}", g.trace
            mapped = map_score(g.score, lo, hi)
            return f"Score: {mapped}", f"{g.trace}\nOn the {lo} to {hi} scale: {mapped}."
        if request.protocol in ("pairwise", "arena"):
            assert request.response_a is not None and request.response_b is not None
            c = compare_responses(
                request.instruction, request.response_a, request.response_b, world=world, trace=trace,
                flaws=flaws,
            )
            verdict = c.choice if request.protocol == "pairwise" else c.arena
            return f"Verdict: [[{verdict}]]", c.trace
        return _rubric(request.instruction), None
    except InstructionParseError as e:
        raise BackendError(f"rules backend: {e.message}", e.hint) from e


class RulesBackend:
    """Checklist gold judge for synthetic-world prompts (see the module docstring)."""

    def __init__(self, spec: RulesBackendSpec | None = None, *, world: WorldVariant | None = None) -> None:
        self.spec = spec or RulesBackendSpec()
        self.world: WorldVariant = world or self.spec.world
        self.trace: TraceStyle = self.spec.trace
        self.flaws = ProxyFlaws(frozenset(self.spec.blind_to), tuple(sorted(self.spec.pays_for.items())))

    @property
    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"kind": "rules", "world": self.world, "version": GOLD_VERSION}
        if self.trace != "full":  # full-trace identities (and cache keys) stay as before
            ident["trace"] = self.trace
        if self.flaws:  # a controlled proxy names its flaws wherever its identity goes
            ident["blind_to"] = sorted(self.flaws.blind_to)
            ident["pays_for"] = dict(self.flaws.pays_for)
        return ident

    def complete_sync(self, messages: Sequence[ChatMessage]) -> Completion:
        t0 = time.perf_counter()
        text, reasoning = judge(read_request(messages), self.world, self.trace, self.flaws)
        return Completion(
            text=text,
            reasoning=reasoning,
            finish_reason="stop",
            model=f"rules-{self.world}" + ("-proxy" if self.flaws else ""),
            latency_s=time.perf_counter() - t0,
        )

    async def complete(self, messages: Sequence[ChatMessage], sampling: SamplingSpec) -> Completion:
        return self.complete_sync(messages)

    async def complete_many(
        self,
        requests: Sequence[Sequence[ChatMessage]],
        sampling: SamplingSpec,
        progress: ProgressFn | None = None,
    ) -> list[Completion]:
        out = []
        for msgs in requests:
            out.append(self.complete_sync(msgs))
            if progress is not None:
                progress(1)
        return out

    async def next_token_probs(
        self,
        requests: Sequence[tuple[Sequence[ChatMessage], str]],
        candidates: Sequence[str],
    ) -> list[dict[str, float]]:
        """One-hot on the verdict: P=1 for the candidate that continues ``prefix`` into the verdict
        text (longest match), 0 for the others; all 0 when the prefix does not lead to it."""
        out: list[dict[str, float]] = []
        for messages, prefix in requests:
            text, _ = judge(read_request(messages), self.world, self.trace, self.flaws)
            probs = {c: 0.0 for c in candidates}
            if text.startswith(prefix):
                rest = text[len(prefix) :]
                best = max((c for c in candidates if c and rest.startswith(c)), key=len, default=None)
                if best is not None:
                    probs[best] = 1.0
            out.append(probs)
        return out

    async def aclose(self) -> None:
        return None


__all__ = [
    "FORMAT_HINT_RE",
    "JudgeRequest",
    "RulesBackend",
    "judge",
    "map_score",
    "read_request",
]
