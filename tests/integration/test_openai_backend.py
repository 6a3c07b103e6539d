"""The openai backend against a REAL llama.cpp server serving SmolLM2-135M (no fakes here)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import openai.resources.chat.completions as chat_completions
import pytest

from judgelab.backends.llama_server import LLAMA_CPP_EXTRA_BODY, free_port
from judgelab.backends.openai_compat import OpenAICompatBackend, wait_for_server
from judgelab.config.specs import OpenAIBackendSpec, SamplingSpec
from judgelab.errors import BackendError
from judgelab.types import ChatMessage, Completion

pytestmark = pytest.mark.integration


LLAMA_MODEL = "smollm2"  # must match the llama_model fixture (checked below)


def backend(*base_urls: str, **overrides: Any) -> OpenAICompatBackend:
    fields: dict[str, Any] = {
        "model": LLAMA_MODEL,
        "base_urls": list(base_urls),
        "timeout_s": 60,
        "extra_body": dict(LLAMA_CPP_EXTRA_BODY),  # neutral sampling (see llama_server.py)
    }
    fields.update(overrides)
    return OpenAICompatBackend(OpenAIBackendSpec(**fields))


def ask(text: str) -> list[ChatMessage]:
    return [{"role": "user", "content": text}]


def run_many(
    b: OpenAICompatBackend,
    requests: Sequence[Sequence[ChatMessage]],
    sampling: SamplingSpec,
    **kwargs: Any,
) -> list[Completion]:
    async def go() -> list[Completion]:
        try:
            return await b.complete_many(requests, sampling, **kwargs)
        finally:
            await b.aclose()

    return asyncio.run(go())


def run_one(
    b: OpenAICompatBackend, messages: list[ChatMessage], sampling: SamplingSpec
) -> Completion:
    return run_many(b, [messages], sampling)[0]


GREEDY = SamplingSpec(temperature=0.0, max_tokens=24, seed=0)
# Prompts of strictly increasing length: usage.prompt_tokens (exact, from the tokenizer) then
# tells which prompt an answer belongs to, whatever the server's numerics do.
PROMPTS = [
    "Name a fruit.",
    "Name a fruit that is red.",
    "Name a fruit that is red and sweet.",
    "Name a fruit that is red and sweet and grows on trees.",
    "Name a fruit that is red and sweet and grows on trees in cold countries.",
    "Name a fruit that is red and sweet and grows on trees in cold countries in the north.",
    "Name a fruit that is red and sweet and grows on trees in cold countries in the north of Europe.",
    (
        "Name a fruit that is red and sweet and grows on trees in cold countries in the north of "
        "Europe and Asia."
    ),
]


def test_wait_for_server_lists_the_model(llama_server: str, llama_model: str) -> None:
    assert llama_model == LLAMA_MODEL
    assert wait_for_server(llama_server, timeout_s=10) == [LLAMA_MODEL]


def test_plain_chat_returns_text_and_usage(llama_server: str) -> None:
    out = run_one(backend(llama_server), ask("What is the capital of France?"), GREEDY)
    assert out.text.strip()
    assert out.reasoning is None
    assert out.usage.prompt_tokens > 5  # the chat template adds tokens around the question
    assert 0 < out.usage.completion_tokens <= GREEDY.max_tokens
    assert out.finish_reason in ("stop", "length")
    assert out.model == LLAMA_MODEL
    assert out.latency_s > 0
    assert out.tokens is None


def test_max_tokens_is_honoured(llama_server: str) -> None:
    sampling = SamplingSpec(max_tokens=5)
    out = run_one(backend(llama_server), ask("Write a long story about a dragon."), sampling)
    assert out.usage.completion_tokens == 5
    assert out.finish_reason == "length"


def test_logprobs_and_top_logprobs_are_sane(llama_server: str) -> None:
    sampling = SamplingSpec(temperature=0.0, max_tokens=12, logprobs=True, top_logprobs=5)
    out = run_one(backend(llama_server), ask("What is the capital of France?"), sampling)
    assert out.tokens is not None
    assert len(out.tokens) == out.usage.completion_tokens
    assert "".join(t.token for t in out.tokens).strip() == out.text
    for tok in out.tokens:
        assert math.isfinite(tok.logprob) and tok.logprob <= 1e-6  # probability ≤ 1
        assert 1 <= len(tok.top_logprobs) <= 5
        mass = sum(math.exp(lp) for lp in tok.top_logprobs.values())
        assert mass <= 1.0 + 1e-4  # alternatives of one position cannot exceed probability 1
        # greedy decoding: the chosen token is the most likely one, and it is among the top
        assert tok.token in tok.top_logprobs
        assert tok.logprob == pytest.approx(tok.top_logprobs[tok.token], abs=1e-5)
        assert tok.logprob == pytest.approx(max(tok.top_logprobs.values()), abs=1e-5)


def test_seeded_decoding_is_deterministic(llama_server: str) -> None:
    b = backend(llama_server)
    greedy = run_many(b, [ask("Tell me a fact about the moon.")] * 2, GREEDY)
    assert greedy[0].text == greedy[1].text
    sampled = SamplingSpec(temperature=1.0, max_tokens=24, seed=1234)
    twice = run_many(backend(llama_server), [ask("Invent a name for a cat.")] * 2, sampled)
    assert twice[0].text == twice[1].text  # same seed, same sample


def test_concurrency_cap_order_and_progress(
    llama_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Instrument the SDK call itself: how many chat requests are in flight at once.
    state = {"now": 0, "peak": 0, "calls": 0}
    original = chat_completions.AsyncCompletions.create

    async def counting_create(self: Any, *args: Any, **kwargs: Any) -> Any:
        state["now"] += 1
        state["calls"] += 1
        state["peak"] = max(state["peak"], state["now"])
        try:
            return await original(self, *args, **kwargs)
        finally:
            state["now"] -= 1

    requests = [ask(p) for p in PROMPTS]
    monkeypatch.setattr(chat_completions.AsyncCompletions, "create", counting_create)
    ticks: list[int] = []
    sampling = SamplingSpec(max_tokens=8)
    outs = run_many(backend(llama_server, concurrency=4), requests, sampling, progress=ticks.append)
    assert state["calls"] == len(requests)
    assert state["peak"] == 4  # requests did overlap, and never more than the cap
    assert ticks == [1] * len(requests)
    assert all(o.text for o in outs)
    # order preserved: answer i came from prompt i (prompt lengths strictly increase)
    lengths = [o.usage.prompt_tokens for o in outs]
    assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths), lengths


def test_timeout_retries_then_raises(llama_server: str, caplog: pytest.LogCaptureFixture) -> None:
    timeout_s, retries, backoff = 0.1, 2, 0.05
    b = backend(llama_server, timeout_s=timeout_s, max_retries=retries, backoff_s=backoff)
    sampling = SamplingSpec(max_tokens=200)
    long_ask = ask("Write a detailed 1000-word essay about the history of Rome.")
    t0 = time.perf_counter()
    with (
        caplog.at_level(logging.WARNING, logger="judgelab.backends.openai_compat"),
        pytest.raises(BackendError, match=f"after {retries + 1} attempts: timed out") as info,
    ):
        run_one(b, long_ask, sampling)
    elapsed = time.perf_counter() - t0
    retry_logs = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retry_logs) == retries
    expected = (retries + 1) * timeout_s + backoff * (1 + 2)  # 3 attempts + backoffs 0.05, 0.1
    assert expected <= elapsed < expected + 2.0
    assert "timeout_s" in (info.value.hint or "")
    # the server is still healthy afterwards
    assert run_one(backend(llama_server), ask("Hi"), SamplingSpec(max_tokens=4)).text


def test_server_down_fails_fast_with_clear_message() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    b = backend(url, max_retries=2, backoff_s=0.05)
    t0 = time.perf_counter()
    with pytest.raises(BackendError) as info:
        run_one(b, ask("Hi"), GREEDY)
    assert time.perf_counter() - t0 < 2.0
    err = str(info.value)
    assert url in err and "after 3 attempts" in err and "connection error" in err
    assert "running" in (info.value.hint or "") and "llama_cpp.server" in (info.value.hint or "")


def _chat_posts(log: str) -> int:
    return log.count('"POST /v1/chat/completions HTTP/1.1" 200')


def test_two_base_urls_both_get_traffic(llama_server_factory: Any) -> None:
    # Two real replicas of the same model; their own access logs say who served what.
    a = llama_server_factory.start("replica-a", n_threads=1)
    c = llama_server_factory.start("replica-b", n_threads=1)
    before = (_chat_posts(a.log_text()), _chat_posts(c.log_text()))
    b = backend(a.base_url, c.base_url, concurrency=2)
    outs = run_many(b, [ask(p) for p in PROMPTS[:6]], SamplingSpec(max_tokens=8))
    assert all(o.text for o in outs)
    served = (_chat_posts(a.log_text()) - before[0], _chat_posts(c.log_text()) - before[1])
    assert sum(served) == 6
    assert min(served) >= 1, served
    assert b.identity == backend(a.base_url).identity  # replicas are one judge
