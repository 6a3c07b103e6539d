"""The ``openai`` backend: any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp, hosted APIs).

Requests go through the official ``openai`` SDK (``AsyncOpenAI``, one client per base_url) with the
SDK's own retries switched off (``max_retries=0``) so that the policy is ours and visible:

- a concurrency cap (one ``asyncio.Semaphore`` over all requests and all base_urls); a request
  holds its slot through its retries, so a struggling server is not flooded;
- a per-attempt wall-clock limit of ``spec.timeout_s``;
- retries with exponential backoff (``backoff_s``, doubling, +0–10 % jitter) **only** on transient
  failures: timeouts, connection errors, HTTP 408, 429 and 5xx (a numeric ``Retry-After`` up to
  60 s is honoured when longer). Other 4xx (bad request, auth, not found) fail at once;
- load balancing over ``base_urls``: each attempt goes to the URL with the fewest requests in
  flight, ties broken round-robin, so a retry can land on another replica;
- the API key is read once from the environment variable named by ``spec.api_key_env`` (a dummy
  ``"EMPTY"`` for local servers) and never enters ``identity``, ``repr``, logs or error messages.

Sampling fields left unset (``seed=None``, ``top_k=None``, empty ``stop``) are not sent, so the
server's defaults apply: most servers do no top-k truncation by default, but llama-cpp-python's
server uses ``top_k=40``, ``repeat_penalty=1.1`` and ``min_p=0.05``; point such servers at
``judgelab.backends.llama_server.LLAMA_CPP_EXTRA_BODY`` via ``extra_body`` to sample neutrally.
``max_tokens`` is sent as ``max_tokens`` (what vLLM, SGLang and llama.cpp read).

``latency_s`` of a ``Completion`` is the wall time of the successful attempt (not the wait for a
slot nor failed attempts). Reasoning is read from ``message.reasoning`` / ``reasoning_content``
or inline ``<think>`` blocks (``split_reasoning``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Self

import openai

from judgelab.backends.base import ProgressFn
from judgelab.backends.reasoning import split_reasoning
from judgelab.config.specs import OpenAIBackendSpec, SamplingSpec
from judgelab.errors import BackendError, ConfigError
from judgelab.types import ChatMessage, Completion, TokenLogprob, Usage

logger = logging.getLogger(__name__)

DUMMY_API_KEY = "EMPTY"
"""Key sent to local servers when ``api_key_env`` is None (they ignore it; the SDK needs one)."""

_MAX_RETRY_AFTER_S = 60.0
_JITTER = 0.1
_START_HINT = (
    "start one with `python -m llama_cpp.server --model <model.gguf> --host 127.0.0.1 --port 8000` "
    "or `vllm serve <model> --port 8000`, and check that base_url ends in /v1"
)


def is_transient_status(status_code: int) -> bool:
    """HTTP statuses worth retrying: request timeout, rate limit, server errors."""
    return status_code in (408, 429) or status_code >= 500


class OpenAICompatBackend:
    """``Backend`` for OpenAI-compatible chat-completions servers. See the module docstring."""

    def __init__(self, spec: OpenAIBackendSpec) -> None:
        self.spec = spec
        if spec.api_key_env is None:
            self._api_key = DUMMY_API_KEY
        else:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ConfigError(
                    f"the openai backend for model {spec.model!r} reads its API key from the "
                    f"environment variable {spec.api_key_env}, which is not set",
                    hint=f"export {spec.api_key_env}=<your key>, or set api_key_env: null for a "
                    "local server that needs no key",
                )
            self._api_key = key
        self._urls: list[str] = [u.rstrip("/") for u in spec.base_urls]
        self._in_flight: list[int] = [0] * len(self._urls)
        self._rr = 0
        # Built on first use inside a running event loop, rebuilt if a later call runs in another
        # loop (httpx connection pools and semaphores must not cross event loops).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: list[openai.AsyncOpenAI] = []
        self._sem: asyncio.Semaphore | None = None

    # ------------------------------------------------------------------ identity and repr
    @property
    def identity(self) -> dict[str, Any]:
        """``{"kind": "openai", "model": ...}``; base_urls are not identity (replicas are one judge).

        ``extra_body`` is added when non-empty: it can change outputs (e.g. chat-template switches
        such as ``enable_thinking``), so it must separate cache entries.
        """
        ident: dict[str, Any] = {"kind": "openai", "model": self.spec.model}
        if self.spec.extra_body:
            ident["extra_body"] = dict(self.spec.extra_body)
        return ident

    @property
    def base_urls(self) -> tuple[str, ...]:
        return tuple(self._urls)

    @property
    def in_flight(self) -> dict[str, int]:
        """Attempts currently in flight per base_url (duplicated URLs are summed)."""
        out: dict[str, int] = {}
        for url, n in zip(self._urls, self._in_flight):
            out[url] = out.get(url, 0) + n
        return out

    def __repr__(self) -> str:
        key = f"${self.spec.api_key_env}" if self.spec.api_key_env else "none"
        return (
            f"OpenAICompatBackend(model={self.spec.model!r}, base_urls={self._urls!r}, "
            f"concurrency={self.spec.concurrency}, api_key={key})"
        )

    # ------------------------------------------------------------------ lifecycle
    def _ensure_loop_state(self) -> tuple[list[openai.AsyncOpenAI], asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._sem is None:
            if self._loop is not None:
                logger.debug("openai backend used from a new event loop: rebuilding clients")
            self._clients = [
                openai.AsyncOpenAI(
                    base_url=url,
                    api_key=self._api_key,
                    max_retries=0,
                    timeout=self.spec.timeout_s,
                )
                for url in self._urls
            ]
            self._sem = asyncio.Semaphore(self.spec.concurrency)
            self._loop = loop
        return self._clients, self._sem

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        self._sem = None
        self._loop = None
        for client in clients:
            await client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ requests
    def request_kwargs(
        self, messages: Sequence[ChatMessage], sampling: SamplingSpec
    ) -> dict[str, Any]:
        """The ``chat.completions.create`` arguments for one request (no secrets in here).

        ``spec.extra_body`` is the base of the request's extra body; fields derived from
        ``sampling`` (``top_k``) override it, since sampling is what the cache key records.
        """
        kwargs: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        if sampling.logprobs:
            kwargs["logprobs"] = True
            if sampling.top_logprobs:
                kwargs["top_logprobs"] = sampling.top_logprobs
        if sampling.reasoning_effort is not None:
            kwargs["reasoning_effort"] = sampling.reasoning_effort
        extra_body: dict[str, Any] = dict(self.spec.extra_body)
        if sampling.top_k is not None:
            extra_body["top_k"] = sampling.top_k
        if extra_body:
            kwargs["extra_body"] = extra_body
        return kwargs

    def _pick(self) -> int:
        """Index of the base_url with the fewest attempts in flight; ties go round-robin."""
        n = len(self._urls)
        best = min(range(n), key=lambda k: (self._in_flight[(self._rr + k) % n], k))
        idx = (self._rr + best) % n
        self._rr = (idx + 1) % n
        return idx

    async def complete(self, messages: Sequence[ChatMessage], sampling: SamplingSpec) -> Completion:
        clients, sem = self._ensure_loop_state()
        kwargs = self.request_kwargs(messages, sampling)
        async with sem:
            response, latency = await self._create_with_retries(clients, kwargs)
        return self._to_completion(response, sampling, latency)

    async def complete_many(
        self,
        requests: Sequence[Sequence[ChatMessage]],
        sampling: SamplingSpec,
        progress: ProgressFn | None = None,
    ) -> list[Completion]:
        """Run all requests concurrently under the cap; results in input order.

        On the first failure the remaining requests are cancelled and that error is raised.
        """

        async def one(messages: Sequence[ChatMessage]) -> Completion:
            result = await self.complete(messages, sampling)
            if progress is not None:
                progress(1)
            return result

        tasks = [asyncio.ensure_future(one(m)) for m in requests]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _create_with_retries(
        self, clients: list[openai.AsyncOpenAI], kwargs: dict[str, Any]
    ) -> tuple[Any, float]:
        attempts = self.spec.max_retries + 1
        last_exc: BaseException | None = None
        last_url = self._urls[0]
        for attempt in range(attempts):
            idx = self._pick()
            url = last_url = self._urls[idx]
            self._in_flight[idx] += 1
            t0 = time.perf_counter()
            retry_after: float | None = None
            try:
                async with asyncio.timeout(self.spec.timeout_s):
                    response = await clients[idx].chat.completions.create(**kwargs)
            except (openai.APIConnectionError, TimeoutError) as exc:  # APITimeoutError included
                last_exc = exc
            except openai.APIStatusError as exc:
                if not is_transient_status(exc.status_code):
                    raise self._status_error(exc, url) from self._safe_cause(exc)
                last_exc = exc
                retry_after = _retry_after_s(exc)
            except openai.APIError as exc:  # e.g. a response that does not fit the schema
                raise BackendError(
                    f"bad response from {url} for model {self.spec.model!r}: "
                    f"{self._scrub(str(exc))}",
                    hint="the server does not speak the OpenAI chat-completions API as expected",
                ) from self._safe_cause(exc)
            else:
                return response, time.perf_counter() - t0
            finally:
                self._in_flight[idx] -= 1
            if attempt + 1 < attempts:
                delay = self.spec.backoff_s * (2**attempt) * (1 + random.uniform(0, _JITTER))
                if retry_after is not None and delay < retry_after <= _MAX_RETRY_AFTER_S:
                    delay = retry_after
                logger.warning(
                    "openai backend: attempt %d/%d to %s failed (%s); retrying in %.2fs",
                    attempt + 1,
                    attempts,
                    url,
                    self._describe(last_exc),
                    delay,
                )
                await asyncio.sleep(delay)
        raise self._exhausted_error(last_exc, last_url, attempts) from self._safe_cause(last_exc)

    # ------------------------------------------------------------------ errors
    def _scrub(self, text: str) -> str:
        if self._api_key != DUMMY_API_KEY and self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _safe_cause(self, exc: BaseException | None) -> BaseException | None:
        """The exception to chain, or None when its text would show the API key."""
        if exc is not None and self._scrub(str(exc)) != str(exc):
            return None
        return exc

    def _describe(self, exc: BaseException | None) -> str:
        if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
            return f"timed out after {self.spec.timeout_s:g}s"
        if isinstance(exc, openai.APIStatusError):
            return f"HTTP {exc.status_code}: {self._scrub(exc.message)}"
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            return self._scrub(f"connection error{detail}")
        return self._scrub(f"{type(exc).__name__}: {exc}")

    def _exhausted_error(self, exc: BaseException | None, url: str, attempts: int) -> BackendError:
        what = self._describe(exc)
        where = url if len(self._urls) == 1 else f"{url} (one of {len(self._urls)} base_urls)"
        msg = (
            f"request to model {self.spec.model!r} at {where} failed after {attempts} "
            f"attempt{'s' if attempts != 1 else ''}: {what}"
        )
        if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
            hint = (
                f"the server answered too slowly: raise timeout_s (now {self.spec.timeout_s:g}), "
                "lower max_tokens or concurrency, or add replicas to base_urls"
            )
        elif isinstance(exc, openai.APIConnectionError):
            hint = f"is the server at {url} running? {_START_HINT}"
        else:
            hint = (
                "the server kept failing or rate-limiting: check its log, lower concurrency, or "
                "raise max_retries / backoff_s"
            )
        return BackendError(msg, hint=hint)

    def _status_error(self, exc: openai.APIStatusError, url: str) -> BackendError:
        code = exc.status_code
        msg = (
            f"{url} refused the request for model {self.spec.model!r} "
            f"(HTTP {code}): {self._scrub(exc.message)}"
        )
        if code in (401, 403):
            src = (
                f"${self.spec.api_key_env}" if self.spec.api_key_env else "none (api_key_env: null)"
            )
            hint = f"check the API key (read from {src}) and its permissions"
        elif code == 404:
            hint = (
                f"check the model name {self.spec.model!r} (GET {url}/models lists what the server "
                "serves) and that base_url ends in /v1"
            )
        else:
            hint = "the server rejected the request: check that it supports these sampling options"
        return BackendError(msg, hint=hint)

    # ------------------------------------------------------------------ parsing
    def _to_completion(self, response: Any, sampling: SamplingSpec, latency: float) -> Completion:
        if not response.choices:
            raise BackendError(
                f"the server returned no choices for model {self.spec.model!r}",
                hint="check the server log; the request may have been filtered",
            )
        choice = response.choices[0]
        message = choice.message
        reasoning_field = _reasoning_field(message)
        text, reasoning = split_reasoning(message.content or "", reasoning_field)
        tokens: tuple[TokenLogprob, ...] | None = None
        if sampling.logprobs:
            content = choice.logprobs.content if choice.logprobs is not None else None
            if content is None:
                raise BackendError(
                    f"logprobs were requested but the server returned none for model "
                    f"{self.spec.model!r}",
                    hint="enable logprobs on the server (llama.cpp: --logits_all true; vLLM: "
                    "--max-logprobs) or set logprobs: false",
                )
            tokens = tuple(
                TokenLogprob(
                    token=t.token,
                    logprob=float(t.logprob),
                    top_logprobs={a.token: float(a.logprob) for a in (t.top_logprobs or [])},
                )
                for t in content
            )
        usage = response.usage
        return Completion(
            text=text,
            reasoning=reasoning,
            finish_reason=choice.finish_reason,
            tokens=tokens,
            usage=Usage(
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            ),
            model=response.model,
            latency_s=latency,
        )


def _reasoning_field(message: Any) -> str | None:
    """``reasoning`` (vLLM ≥0.10, gpt-oss) or ``reasoning_content`` (DeepSeek, SGLang, older vLLM)."""
    extra = getattr(message, "model_extra", None) or {}
    for name in ("reasoning", "reasoning_content"):
        value = extra[name] if name in extra else getattr(message, name, None)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _retry_after_s(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def wait_for_server(base_url: str, timeout_s: float = 60.0, poll_s: float = 0.2) -> list[str]:
    """Poll ``GET {base_url}/models`` until it answers 200; return the served model ids.

    Synchronous (for fixtures, scripts and CLI preflight). Raises ``BackendError`` on timeout.
    """
    url = base_url.rstrip("/") + "/models"
    deadline = time.monotonic() + timeout_s
    last: str = "no attempt"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=max(0.5, min(5.0, timeout_s))) as resp:
                body = json.loads(resp.read().decode("utf-8"))
            data = body.get("data", []) if isinstance(body, dict) else []
            return [str(m.get("id")) for m in data if isinstance(m, dict)]
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise BackendError(
                f"no OpenAI-compatible server answered at {url} within {timeout_s:g}s ({last})",
                hint=f"is the server running? {_START_HINT}",
            )
        time.sleep(poll_s)


__all__ = ["DUMMY_API_KEY", "OpenAICompatBackend", "is_transient_status", "wait_for_server"]
