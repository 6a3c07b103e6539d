"""In-process transformers backend (``kind: hf``): batched chat generation and next-token probabilities.

Loading goes through ``judgelab.models.load_causal_lm`` (alias / local folder / hub id); torch and
transformers are imported lazily, so importing this module stays light.

Generation
  Requests are sorted by prompt length, cut into chunks of ``batch_size`` and run as left-padded
  ``model.generate`` calls. Token choice is made by our own logits processor (``_TokenChooser``)
  while ``generate`` itself runs greedy over the processor's one-hot output. This buys two things:

  - *per-request seeding*: each request samples from its own ``torch.Generator`` seeded by
    ``sha256(seed, prompt token ids)``, so a request's completion depends only on (model, prompt,
    sampling, seed), not on which other requests share its batch (like vLLM's per-request seed).
    Consequence: the same prompt twice with the same seed gives the same sample; vary ``seed`` to
    draw different samples. ``seed: null`` draws fresh randomness.
  - *log-probabilities without keeping full logits*: only the chosen token's logprob and the top-k
    are kept per step.

  Sampling order is temperature -> top-k -> top-p (as transformers and vLLM); temperature 0 is
  greedy. The model's own ``generation_config.json`` sampling defaults (repetition penalty, ...)
  are NOT applied: the ``SamplingSpec`` alone defines sampling, so it can be a cache key.

  Logprobs are ``log_softmax`` of the RAW logits (temperature 1, before top-k/top-p), which is
  what vLLM returns by default and what OpenAI-style servers return at temperature 1.

  Stop strings end a row early (transformers' ``StopStringCriteria``); the text is cut before the
  earliest stop string (OpenAI semantics: the stop string is not returned). ``finish_reason`` is
  ``"stop"`` (eos or stop string) or ``"length"``. Inline ``<think>`` blocks are split off with
  ``split_reasoning``.

Next-token probabilities (the expected-score reward)
  ``next_token_probs`` runs one left-padded forward pass per chunk over
  ``chat_template(messages, add_generation_prompt=True) + assistant_prefix`` and reads the softmax
  of the raw logits. Tokenisation rule at the prefix/candidate boundary: the probability of
  candidate ``c`` is the probability of the token sequence the tokenizer itself produces for
  ``prompt + prefix + c``. Concretely we tokenize ``prefix_tail`` and ``prefix_tail + c`` and take
  their longest common token prefix as the context; exactly one token must remain (else
  ``ConfigError``), and its probability is read at the end of that context. So:

  - SmolLM2 splits digits and spaces: ``"Score: " + "7"`` -> ``[..., ':', ' ', '7']``; P('7') is
    read after the ' ' token (the last prompt position).
  - GPT-2/Qwen-style BPE merges the space: ``"Score: " + "7"`` -> ``[..., ':', ' 7']``; the
    trailing ' ' token of the prompt is dropped and P(' 7') is read one position earlier, at ':'.
  - ``"Score:" + "7"`` means exactly "Score:7"; no implicit leading-space variant is added,
    because a proxy judge trained on a fixed format assigns its mass to that exact format.

  An assistant prefix that opens with ``<think>`` after a prompt the chat template already ended
  with ``<think>`` is not opened twice (``_without_reopened_think``).

  Only the text after the last added (special) token is re-tokenised (added tokens are hard
  boundaries for HF tokenizers); the result is checked against the full prompt's tokens and the
  whole prompt is used instead when they disagree.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from judgelab.backends.base import ProgressFn
from judgelab.backends.reasoning import split_reasoning
from judgelab.config.specs import HFBackendSpec, SamplingSpec
from judgelab.errors import BackendError, ConfigError
from judgelab.models.registry import MODEL_RECIPES
from judgelab.types import ChatMessage, Completion, TokenLogprob, Usage

T = TypeVar("T")

if TYPE_CHECKING:
    import torch

    from judgelab.models.loading import LoadedModel

logger = logging.getLogger(__name__)

_THINK_TOKENS = ("<think>", "</think>")


def _row_seed(seed: int, prompt_ids: Sequence[int]) -> int:
    h = hashlib.sha256(f"{seed}|".encode())
    h.update(",".join(map(str, prompt_ids)).encode())
    return int.from_bytes(h.digest()[:8], "big") & ((1 << 63) - 1)


def _common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class _CandidatePlan:
    """Where to read each candidate: ``back`` tokens before the end of the prompt, and its id."""

    back: tuple[int, ...]
    token_ids: tuple[int, ...]


class HFBackend:
    """A transformers causal LM, loaded lazily on first use (or eagerly with ``load()``)."""

    def __init__(self, spec: HFBackendSpec) -> None:
        self.spec = spec
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()  # one model call at a time, whatever the event loop
        self._token_text: dict[int, str] = {}
        self._skip_ids: frozenset[int] | None = None
        self._plans: dict[tuple[str, tuple[str, ...]], _CandidatePlan] = {}
        # Every model call runs on this one persistent worker thread, never a fresh one: torch
        # caches per-thread state (on an H100 cuDNN attention builds a ~100 ms plan per input
        # shape and caches it per thread), and asyncio.to_thread under a new asyncio.run gets a
        # cold thread each time — measured 0.2–0.66x of plain transformers (benchmarks/bench_gpu.py).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judgelab-hf")

    async def _on_worker(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    @classmethod
    def from_loaded(cls, spec: HFBackendSpec, loaded: LoadedModel) -> HFBackend:
        """Wrap an already-loaded model (e.g. a model being trained) instead of loading one.

        Calls switch the model to eval mode (no dropout) and restore its training flag after.
        """
        backend = cls(spec)
        backend._loaded = loaded
        return backend

    # ------------------------------------------------------------------ identity & loading
    @property
    def identity(self) -> dict[str, Any]:
        """What the judge cache keys on: the model (a local folder by its path *and* the content
        fingerprint of its files, so weights retrained in place are a different judge), revision,
        dtype and the thinking switch."""
        m = self.spec.model
        name = m.name
        out: dict[str, Any] = {"kind": "hf"}
        if name not in MODEL_RECIPES and Path(name).expanduser().is_dir():
            from judgelab.models.fingerprint import folder_fingerprint

            name = str(Path(name).expanduser().resolve())
            out["content_sha256"] = folder_fingerprint(name)
        return {
            **out,
            "model": name,
            "revision": m.revision,
            "dtype": m.dtype,
            "enable_thinking": self.spec.enable_thinking,
        }

    def load(self) -> LoadedModel:
        """Load model and tokenizer now (idempotent); returns them."""
        with self._lock:
            return self._ensure_loaded()

    def _ensure_loaded(self) -> LoadedModel:
        if self._loaded is None:
            from judgelab.models.loading import load_causal_lm

            loaded = load_causal_lm(self.spec.model)
            if not getattr(loaded.tokenizer, "chat_template", None):
                raise ConfigError(
                    f"model {self.spec.model.name!r} has no chat template",
                    hint="use an instruct/chat model, or a folder whose tokenizer has chat_template",
                )
            self._loaded = loaded
        return self._loaded

    async def aclose(self) -> None:
        await self._on_worker(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._loaded is None:
                return
            self._loaded = None
            import gc

            import torch

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    # ------------------------------------------------------------------ prompts
    def _render(self, messages: Sequence[ChatMessage]) -> str:
        tok = self._ensure_loaded().tokenizer
        kwargs: dict[str, Any] = {}
        if self.spec.enable_thinking is not None:
            kwargs["enable_thinking"] = self.spec.enable_thinking
        return tok.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=False, **kwargs
        )

    def _encode(self, text: str) -> list[int]:
        # The chat template already holds the special tokens (bos, headers).
        return self._ensure_loaded().tokenizer.encode(text, add_special_tokens=False)

    def _left_pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        loaded = self._ensure_loaded()
        pad = loaded.tokenizer.pad_token_id
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r):] = torch.tensor(list(r), dtype=torch.long)
                mask[i, width - len(r):] = 1
        return ids.to(loaded.device), mask.to(loaded.device)

    def _token_str(self, token_id: int) -> str:
        s = self._token_text.get(token_id)
        if s is None:
            s = self._ensure_loaded().tokenizer.decode([token_id])
            self._token_text[token_id] = s
        return s

    # ------------------------------------------------------------------ generation
    async def complete(self, messages: Sequence[ChatMessage], sampling: SamplingSpec) -> Completion:
        return (await self.complete_many([messages], sampling))[0]

    async def complete_many(
        self,
        requests: Sequence[Sequence[ChatMessage]],
        sampling: SamplingSpec,
        progress: ProgressFn | None = None,
    ) -> list[Completion]:
        if not requests:
            return []
        encoded = await self._on_worker(self._encode_prompts, requests)
        prompts = [ids for ids, _ in encoded]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Completion | None] = [None] * len(prompts)
        bs = self.spec.batch_size
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            chunk = await self._on_worker(
                self._generate_chunk, [prompts[i] for i in idx], [encoded[i][1] for i in idx], sampling
            )
            for i, c in zip(idx, chunk):
                results[i] = c
            if progress is not None:
                progress(len(idx))
        return [r for r in results if r is not None]

    def _encode_prompts(
        self, requests: Sequence[Sequence[ChatMessage]]
    ) -> list[tuple[list[int], bool]]:
        """Token ids of each rendered prompt, and whether the prompt itself opened a think block.

        Templates like Qwen3's (thinking on) end the prompt with ``<think>``: the completion then
        holds only ``...</think>answer``, or no close tag at all when it ran out of tokens. We put
        the opening tag back in front of the completion so ``split_reasoning`` sees the whole block
        (and an unterminated one becomes reasoning, never an answer).
        """
        with self._lock:
            out = []
            for m in requests:
                text = self._render(m)
                out.append((self._encode(text), text.rstrip().endswith(_THINK_TOKENS[0])))
            return out

    def _eos_ids(self) -> list[int]:
        loaded = self._ensure_loaded()
        ids: set[int] = set()
        gen_eos = getattr(loaded.model.generation_config, "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif gen_eos:
            ids.update(int(x) for x in gen_eos)
        if loaded.tokenizer.eos_token_id is not None:
            ids.add(int(loaded.tokenizer.eos_token_id))
        return sorted(ids)

    def _generate_chunk(
        self, prompts: list[list[int]], opened_think: list[bool], sampling: SamplingSpec
    ) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        with self._lock:
            loaded = self._ensure_loaded()
            model, tok = loaded.model, loaded.tokenizer
            t0 = time.perf_counter()
            eos_ids = self._eos_ids()
            greedy = sampling.temperature == 0.0
            generators = None
            if not greedy:
                generators = []
                for p in prompts:
                    g = torch.Generator()  # CPU: uniform draws are device-independent
                    g.manual_seed(_row_seed(sampling.seed, p) if sampling.seed is not None
                                  else secrets.randbits(63))
                    generators.append(g)
            chooser = _TokenChooser(sampling, generators, want_logprobs=sampling.logprobs)
            config = GenerationConfig(
                max_new_tokens=sampling.max_tokens,
                do_sample=False,
                num_beams=1,
                eos_token_id=eos_ids,
                pad_token_id=tok.pad_token_id,
                stop_strings=list(sampling.stop) or None,
                return_dict_in_generate=True,
            )
            ids, mask = self._left_pad(prompts)
            # generate() fills unset fields from model.generation_config (repetition_penalty,
            # temperature, ...): swap in a neutral one so the SamplingSpec alone decides.
            saved = model.generation_config
            model.generation_config = GenerationConfig(
                eos_token_id=eos_ids, pad_token_id=tok.pad_token_id,
                bos_token_id=getattr(saved, "bos_token_id", None),
            )
            was_training = model.training
            model.eval()
            try:
                with torch.inference_mode():
                    out = model.generate(
                        input_ids=ids,
                        attention_mask=mask,
                        generation_config=config,
                        logits_processor=LogitsProcessorList([chooser]),
                        tokenizer=tok if sampling.stop else None,
                    )
            except (RuntimeError, ValueError) as e:
                raise BackendError(f"generation failed on {self.spec.model.name!r}: {e}") from e
            finally:
                model.generation_config = saved
                model.train(was_training)
            new = out.sequences[:, ids.shape[1]:].cpu()
            elapsed = time.perf_counter() - t0
            return [
                self._finish_row(row, new[row].tolist(), len(prompts[row]), opened_think[row],
                                 sampling, chooser, set(eos_ids), elapsed)
                for row in range(len(prompts))
            ]

    def _decode(self, token_ids: Sequence[int]) -> str:
        """Text of generated tokens, special tokens dropped except think tags (kept for splitting)."""
        tok = self._ensure_loaded().tokenizer
        if self._skip_ids is None:
            skip = set(tok.all_special_ids)
            for t in _THINK_TOKENS:
                tid = tok.convert_tokens_to_ids(t)
                if isinstance(tid, int) and tid != tok.unk_token_id:
                    skip.discard(tid)
            self._skip_ids = frozenset(skip)
        skip_ids = self._skip_ids
        return tok.decode([t for t in token_ids if t not in skip_ids], skip_special_tokens=False)

    def _finish_row(
        self,
        row: int,
        gen: list[int],
        prompt_len: int,
        opened_think: bool,
        sampling: SamplingSpec,
        chooser: _TokenChooser,
        eos_ids: set[int],
        elapsed: float,
    ) -> Completion:
        n = len(gen)
        finish = "length"
        for i, t in enumerate(gen):
            if t in eos_ids:
                n, finish = i + 1, "stop"
                break
        content_ids = gen[:n - 1] if finish == "stop" else gen[:n]
        text = self._decode(content_ids)
        if sampling.stop:
            hits = [(text.find(s), s) for s in sampling.stop if s and s in text]
            if hits:
                pos, s = min(hits)
                # Tokens up to the one that completed the stop string (where generation stopped).
                n = self._tokens_covering(content_ids, pos + len(s))
                text, finish = text[:pos], "stop"
        tokens = None
        if sampling.logprobs:
            tokens = tuple(
                TokenLogprob(
                    token=self._token_str(gen[k]),
                    logprob=chooser.chosen_logprob(k, row),
                    top_logprobs=self._top_dict(chooser.top(k, row)),
                )
                for k in range(n)
            )
        answer, reasoning = split_reasoning(_THINK_TOKENS[0] + text if opened_think else text)
        return Completion(
            text=answer,
            reasoning=reasoning,
            finish_reason=finish,
            tokens=tokens,
            usage=Usage(prompt_tokens=prompt_len, completion_tokens=n),
            model=self.spec.model.name,
            latency_s=elapsed,
        )

    def _tokens_covering(self, ids: list[int], n_chars: int) -> int:
        """Smallest k such that the decoded text of ``ids[:k]`` is at least ``n_chars`` long."""
        lo, hi = 1, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self._decode(ids[:mid])) >= n_chars:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _top_dict(self, pairs: list[tuple[int, float]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for tid, lp in pairs:  # sorted best first: keep the best when two ids decode alike
            out.setdefault(self._token_str(tid), lp)
        return out

    # ------------------------------------------------------------------ next-token probabilities
    async def next_token_probs(
        self,
        requests: Sequence[tuple[Sequence[ChatMessage], str]],
        candidates: Sequence[str],
    ) -> list[dict[str, float]]:
        """P(candidate) right after each (messages, assistant_prefix); see the module docstring."""
        if not candidates:
            raise ConfigError("next_token_probs needs at least one candidate")
        if len(set(candidates)) != len(candidates):
            raise ConfigError(f"duplicate candidates in {list(candidates)!r}")
        if not requests:
            return []
        planned = await self._on_worker(self._plan_requests, requests, tuple(candidates))
        order = sorted(range(len(planned)), key=lambda i: len(planned[i][0]))
        results: list[dict[str, float] | None] = [None] * len(planned)
        bs = self.spec.batch_size
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            probs = await self._on_worker(self._probs_chunk, [planned[i] for i in idx])
            for i, p in zip(idx, probs):
                results[i] = dict(zip(candidates, p))
        return [r for r in results if r is not None]

    def _plan_requests(
        self, requests: Sequence[tuple[Sequence[ChatMessage], str]], candidates: tuple[str, ...]
    ) -> list[tuple[list[int], _CandidatePlan]]:
        with self._lock:
            out = []
            for messages, prefix in requests:
                rendered = self._render(messages)
                text = rendered + _without_reopened_think(rendered, prefix)
                ids = self._encode(text)
                out.append((ids, self._plan(text, ids, candidates)))
            return out

    def readout_positions(
        self, messages: Sequence[ChatMessage], prefix: str, candidates: Sequence[str]
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """Exactly what ``next_token_probs`` reads for one request: the prompt's token ids and,
        per candidate, (the position whose next-token distribution gives its probability, its
        token id). Used by trainers that must train the read-out a judge will use."""
        ((ids, plan),) = self._plan_requests([(messages, prefix)], tuple(candidates))
        return ids, [(len(ids) - 1 - back, tid) for back, tid in zip(plan.back, plan.token_ids)]

    def _plan(self, text: str, ids: list[int], candidates: tuple[str, ...]) -> _CandidatePlan:
        tail = self._tail_after_added_token(text)
        tail_ids = self._encode(tail)
        if len(tail_ids) > len(ids) or ids[len(ids) - len(tail_ids):] != tail_ids:
            logger.debug("tail tokenisation differs from the full prompt; planning on the full text")
            plan = self._make_plan(text, ids, candidates)
        else:
            key = (tail, candidates)
            plan = self._plans.get(key) or self._make_plan(tail, tail_ids, candidates)
            if len(self._plans) < 4096:
                self._plans[key] = plan
        if max(plan.back) >= len(ids):
            raise ConfigError("the prompt is too short to read a candidate probability")
        return plan

    def _tail_after_added_token(self, text: str) -> str:
        tok = self._ensure_loaded().tokenizer
        cut = 0
        for added in tok.added_tokens_decoder.values():
            content = added.content
            if content and (pos := text.rfind(content)) >= 0:
                cut = max(cut, pos + len(content))
        return text[cut:]

    def _make_plan(self, text: str, ids: list[int], candidates: tuple[str, ...]) -> _CandidatePlan:
        backs: list[int] = []
        token_ids: list[int] = []
        seen: dict[tuple[int, int], str] = {}
        for c in candidates:
            if not c:
                raise ConfigError("empty candidate string in next_token_probs")
            with_c = self._encode(text + c)
            common = _common_prefix_len(ids, with_c)
            rest = with_c[common:]
            if len(rest) != 1:
                pieces = [self._token_str(t) for t in rest]
                raise ConfigError(
                    f"candidate {c!r} is {len(rest)} tokens after the prefix ({pieces!r}); "
                    "next_token_probs needs candidates that are one token each",
                    hint="use single-token labels (e.g. digits 0-9 for SmolLM2/Qwen, letters A/B), "
                    "or change the assistant prefix",
                )
            back = len(ids) - common
            if (back, rest[0]) in seen:
                raise ConfigError(f"candidates {seen[(back, rest[0])]!r} and {c!r} are the same token")
            seen[(back, rest[0])] = c
            backs.append(back)
            token_ids.append(rest[0])
        return _CandidatePlan(back=tuple(backs), token_ids=tuple(token_ids))

    def _probs_chunk(self, planned: list[tuple[list[int], _CandidatePlan]]) -> list[list[float]]:
        import torch

        with self._lock:
            loaded = self._ensure_loaded()
            ids, mask = self._left_pad([p[0] for p in planned])
            keep = max(max(plan.back) for _, plan in planned) + 1
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask,
                                      "position_ids": position_ids, "use_cache": False}
            was_training = loaded.model.training
            loaded.model.eval()
            try:
                with torch.inference_mode():
                    try:
                        # only the last `keep` positions: full-sequence logits would be B*T*V floats
                        logits = loaded.model(**kwargs, logits_to_keep=keep).logits
                    except TypeError:  # a (remote-code) model without logits_to_keep
                        logits = loaded.model(**kwargs).logits
            except (RuntimeError, ValueError) as e:
                raise BackendError(f"forward pass failed on {self.spec.model.name!r}: {e}") from e
            finally:
                loaded.model.train(was_training)
            logits = logits[:, -keep:, :].float()
            probs = torch.softmax(logits, dim=-1).cpu()
            out: list[list[float]] = []
            for row, (_, plan) in enumerate(planned):
                out.append([
                    float(probs[row, keep - 1 - back, tid])
                    for back, tid in zip(plan.back, plan.token_ids)
                ])
            return out


def _without_reopened_think(rendered: str, prefix: str) -> str:
    """``prefix`` minus its opening ``<think>`` when the rendered prompt already ends with one.

    An assistant prefix written as the whole assistant turn (``<think>\\n…\\n</think>\\n\\nScore: ``,
    how the judge rebuilds a reasoning judge's answer) would otherwise open the block twice on chat
    templates that pre-open it (Qwen3 thinking, R1 distills) — a context the model never generated in.
    """
    opener = _THINK_TOKENS[0]
    if rendered.rstrip().endswith(opener) and prefix.lstrip().startswith(opener):
        rest = prefix.lstrip()[len(opener):]
        return rest[1:] if rendered.endswith("\n") and rest.startswith("\n") else rest
    return prefix


class _TokenChooser:
    """Logits processor that picks the next token itself and records raw logprobs.

    Returns a one-hot score row (0 for the chosen token, -inf elsewhere), so ``generate`` running
    greedy emits exactly our choice. Duck-typed as a transformers ``LogitsProcessor``.
    """

    def __init__(
        self, sampling: SamplingSpec, generators: list[torch.Generator] | None, want_logprobs: bool
    ) -> None:
        self.sampling = sampling
        self.generators = generators
        self.want_logprobs = want_logprobs
        self.n_top = sampling.top_logprobs
        self._chosen_lp: list[torch.Tensor] = []
        self._top_vals: list[torch.Tensor] = []
        self._top_ids: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        scores = scores.float()
        if self.generators is None:
            chosen = scores.argmax(dim=-1)
        else:
            chosen = self._sample(scores, self.generators)
        if self.want_logprobs:
            lp = torch.log_softmax(scores, dim=-1)
            self._chosen_lp.append(lp.gather(1, chosen[:, None]).squeeze(1).cpu())
            if self.n_top:
                v, i = lp.topk(self.n_top, dim=-1)
                self._top_vals.append(v.cpu())
                self._top_ids.append(i.cpu())
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen[:, None], 0.0)
        return out

    def _sample(self, scores: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        import torch

        s = self.sampling
        logits = scores / s.temperature
        if s.top_k is not None and s.top_k < logits.shape[-1]:
            kth = torch.topk(logits, s.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if s.top_p < 1.0:
            sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=False)
            cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
            remove = cum <= (1.0 - s.top_p)
            remove[:, -1] = False  # always keep the most likely token
            logits = logits.masked_fill(remove.scatter(1, sorted_idx, remove), float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        cdf = probs.cumsum(dim=-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators])
        target = (u.to(cdf.device, torch.float32) * cdf[:, -1]).unsqueeze(1)
        idx = torch.searchsorted(cdf, target, right=True).squeeze(1)
        return idx.clamp(max=logits.shape[-1] - 1)

    def chosen_logprob(self, step: int, row: int) -> float:
        return float(self._chosen_lp[step][row])

    def top(self, step: int, row: int) -> list[tuple[int, float]]:
        if not self.n_top:
            return []
        return [
            (int(i), float(v))
            for i, v in zip(self._top_ids[step][row], self._top_vals[step][row])
        ]


__all__ = ["HFBackend"]
