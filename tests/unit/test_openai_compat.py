"""Unit tests of the openai backend against a tiny local fake server (stdlib http.server).

The fake speaks just enough of the chat-completions API to script statuses, delays and bodies;
it runs on 127.0.0.1 with a real socket, so the SDK, our retry policy and timeouts are exercised
end to end. Real-model behaviour is covered in tests/integration/test_openai_backend.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from judgelab.backends.base import Backend
from judgelab.backends.openai_compat import (
    OpenAICompatBackend,
    is_transient_status,
    wait_for_server,
)
from judgelab.config.specs import OpenAIBackendSpec, SamplingSpec
from judgelab.errors import BackendError, ConfigError

# ---------------------------------------------------------------------------- the fake server


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None  # None = a default completion echoing the last message
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion_body(content: str = "ok", **message_extra: Any) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, **message_extra},
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


Responder = Callable[[dict[str, Any], dict[str, str], int], Reply]


class FakeServer:
    """Records every request; ``responder(body, headers, n)`` (n = 0-based request count) replies."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or (lambda body, headers, n: Reply())
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, reply: Reply, default_content: str) -> None:
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = reply.body if reply.body is not None else completion_body(default_content)
                data = json.dumps(body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(Reply(body={"object": "list", "data": [{"id": "fake-model"}]}), "")
                else:
                    self._send(Reply(status=404, body={"error": {"message": "no"}}), "")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.lock:
                    n = len(fake.requests)
                    fake.requests.append(body)
                    fake.headers.append(headers)
                reply = fake.responder(body, headers, n)
                last = body.get("messages", [{}])[-1].get("content", "")
                self._send(reply, f"echo: {last}")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def make(responder: Responder | None = None) -> FakeServer:
        s = FakeServer(responder)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_backend(*urls: str, **overrides: Any) -> OpenAICompatBackend:
    fields: dict[str, Any] = {
        "model": "fake-model",
        "base_urls": list(urls),
        "max_retries": 2,
        "backoff_s": 0.01,
        "timeout_s": 5.0,
    }
    fields.update(overrides)
    return OpenAICompatBackend(OpenAIBackendSpec(**fields))


MSG = [{"role": "user", "content": "hello"}]
GREEDY = SamplingSpec(max_tokens=8)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def complete_and_close(backend: OpenAICompatBackend, sampling: SamplingSpec = GREEDY) -> Any:
    try:
        return await backend.complete(MSG, sampling)
    finally:
        await backend.aclose()


# ---------------------------------------------------------------------------- protocol, mapping


def test_is_a_backend_and_identity_has_no_urls() -> None:
    b = make_backend("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")
    assert isinstance(b, Backend)
    assert b.identity == {"kind": "openai", "model": "fake-model"}
    c = make_backend("http://10.0.0.1:9/v1")
    assert c.identity == b.identity  # replicas of one model are one judge


def test_identity_includes_nonempty_extra_body() -> None:
    b = make_backend("http://127.0.0.1:1/v1", extra_body={"chat_template_kwargs": {"x": 1}})
    assert b.identity == {
        "kind": "openai",
        "model": "fake-model",
        "extra_body": {"chat_template_kwargs": {"x": 1}},
    }


def test_sampling_is_mapped_onto_the_request(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server()
    b = make_backend(srv.base_url, extra_body={"top_k": 99, "repeat_penalty": 1.1})
    sampling = SamplingSpec(
        temperature=0.7,
        top_p=0.9,
        top_k=20,
        max_tokens=33,
        seed=5,
        stop=["\n\n"],
        reasoning_effort="low",
    )
    out = run(complete_and_close(b, sampling))
    assert out.text == "echo: hello"
    sent = srv.requests[0]
    assert sent["model"] == "fake-model"
    assert sent["messages"] == MSG
    assert sent["temperature"] == 0.7 and sent["top_p"] == 0.9 and sent["max_tokens"] == 33
    assert sent["seed"] == 5 and sent["stop"] == ["\n\n"]
    assert sent["reasoning_effort"] == "low"
    assert sent["top_k"] == 20  # sampling wins over extra_body for the fields it sets
    assert sent["repeat_penalty"] == 1.1
    assert "logprobs" not in sent and "top_logprobs" not in sent


def test_unset_optional_fields_are_not_sent(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server()
    run(complete_and_close(make_backend(srv.base_url), SamplingSpec(seed=None)))
    sent = srv.requests[0]
    for key in ("seed", "stop", "top_k", "reasoning_effort", "logprobs", "top_logprobs"):
        assert key not in sent, key


def test_usage_model_finish_reason_latency(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server(lambda body, h, n: Reply(delay_s=0.15))
    out = run(complete_and_close(make_backend(srv.base_url)))
    assert out.usage.prompt_tokens == 7 and out.usage.completion_tokens == 3
    assert out.usage.total_tokens == 10
    assert out.model == "fake-model" and out.finish_reason == "stop"
    assert 0.15 <= out.latency_s < 2.0
    assert out.tokens is None


# ---------------------------------------------------------------------------- reasoning, logprobs


@pytest.mark.parametrize(
    ("content", "extra", "text", "reasoning"),
    [
        ("Score: 7", {"reasoning_content": "long thoughts"}, "Score: 7", "long thoughts"),
        ("Score: 7", {"reasoning": "gpt-oss thoughts"}, "Score: 7", "gpt-oss thoughts"),
        ("<think>inline thoughts</think>\nScore: 3", {}, "Score: 3", "inline thoughts"),
        ("<think>cut off mid-thought Score: 9", {}, "", "cut off mid-thought Score: 9"),
        ("plain answer", {}, "plain answer", None),
        ("plain answer", {"reasoning_content": None}, "plain answer", None),
    ],
)
def test_reasoning_fields_are_parsed(
    fake_server: Callable[..., FakeServer],
    content: str,
    extra: dict[str, Any],
    text: str,
    reasoning: str | None,
) -> None:
    srv = fake_server(lambda body, h, n: Reply(body=completion_body(content, **extra)))
    out = run(complete_and_close(make_backend(srv.base_url)))
    assert out.text == text
    assert out.reasoning == reasoning


def test_logprobs_are_parsed(fake_server: Callable[..., FakeServer]) -> None:
    body = completion_body("7")
    body["choices"][0]["logprobs"] = {
        "content": [
            {
                "token": "7",
                "logprob": -0.1,
                "bytes": [55],
                "top_logprobs": [
                    {"token": "7", "logprob": -0.1, "bytes": [55]},
                    {"token": "8", "logprob": -2.5, "bytes": [56]},
                ],
            }
        ]
    }
    srv = fake_server(lambda b, h, n: Reply(body=body))
    out = run(
        complete_and_close(make_backend(srv.base_url), SamplingSpec(logprobs=True, top_logprobs=2))
    )
    assert srv.requests[0]["logprobs"] is True and srv.requests[0]["top_logprobs"] == 2
    assert out.tokens is not None and len(out.tokens) == 1
    tok = out.tokens[0]
    assert tok.token == "7" and tok.logprob == pytest.approx(-0.1)
    assert tok.top_logprobs == {"7": pytest.approx(-0.1), "8": pytest.approx(-2.5)}


def test_missing_logprobs_is_an_error_not_silence(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server()
    with pytest.raises(BackendError, match="logprobs were requested"):
        run(complete_and_close(make_backend(srv.base_url), SamplingSpec(logprobs=True)))


# ---------------------------------------------------------------------------- retry policy


def test_transient_status_table() -> None:
    for code in (408, 429, 500, 502, 503, 504):
        assert is_transient_status(code), code
    for code in (400, 401, 403, 404, 409, 422):
        assert not is_transient_status(code), code


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_status_is_retried(fake_server: Callable[..., FakeServer], status: int) -> None:
    srv = fake_server(
        lambda b, h, n: (
            Reply(status=status, body={"error": {"message": "busy"}}) if n < 2 else Reply()
        )
    )
    out = run(complete_and_close(make_backend(srv.base_url, max_retries=2)))
    assert out.text == "echo: hello"
    assert len(srv.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_fail_at_once(fake_server: Callable[..., FakeServer], status: int) -> None:
    srv = fake_server(lambda b, h, n: Reply(status=status, body={"error": {"message": "nope"}}))
    with pytest.raises(BackendError, match=f"HTTP {status}") as info:
        run(complete_and_close(make_backend(srv.base_url, max_retries=3)))
    assert len(srv.requests) == 1
    assert info.value.hint
    if status == 404:
        assert "fake-model" in info.value.hint and "/v1" in info.value.hint


def test_retries_exhausted_counts_attempts_and_backs_off(
    fake_server: Callable[..., FakeServer], caplog: pytest.LogCaptureFixture
) -> None:
    srv = fake_server(lambda b, h, n: Reply(status=500, body={"error": {"message": "boom"}}))
    b = make_backend(srv.base_url, max_retries=2, backoff_s=0.1)
    t0 = time.perf_counter()
    with (
        caplog.at_level(logging.WARNING, logger="judgelab.backends.openai_compat"),
        pytest.raises(BackendError, match="after 3 attempts: HTTP 500") as info,
    ):
        run(complete_and_close(b))
    elapsed = time.perf_counter() - t0
    assert len(srv.requests) == 3
    assert 0.1 + 0.2 <= elapsed < 0.1 + 0.2 + 1.0  # backoff 0.1 then 0.2 (+≤10 % jitter)
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 2
    assert info.value.__cause__ is not None  # the SDK error is chained


def test_retry_after_header_is_honoured(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server(
        lambda b, h, n: Reply(status=429, headers={"Retry-After": "0.4"}) if n == 0 else Reply()
    )
    t0 = time.perf_counter()
    run(complete_and_close(make_backend(srv.base_url, backoff_s=0.01)))
    assert time.perf_counter() - t0 >= 0.4
    assert len(srv.requests) == 2


def test_timeout_is_retried_then_fails(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server(lambda b, h, n: Reply(delay_s=1.0))
    b = make_backend(srv.base_url, timeout_s=0.2, max_retries=1, backoff_s=0.01)
    t0 = time.perf_counter()
    with pytest.raises(BackendError, match="after 2 attempts: timed out after 0.2s") as info:
        run(complete_and_close(b))
    elapsed = time.perf_counter() - t0
    assert len(srv.requests) == 2
    assert 0.4 <= elapsed < 1.5
    assert "timeout_s" in (info.value.hint or "")


def test_server_down_fails_fast_with_hint() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    b = make_backend(url, max_retries=1, backoff_s=0.01)
    t0 = time.perf_counter()
    with pytest.raises(BackendError, match="connection error") as info:
        run(complete_and_close(b))
    assert time.perf_counter() - t0 < 3.0
    assert url in str(info.value) and "running" in (info.value.hint or "")


def test_retry_moves_to_a_healthy_replica(fake_server: Callable[..., FakeServer]) -> None:
    bad = fake_server(lambda b, h, n: Reply(status=503, body={"error": {"message": "down"}}))
    good = fake_server()
    b = make_backend(bad.base_url, good.base_url, max_retries=1)
    out = run(complete_and_close(b))  # first attempt round-robins to `bad`, the retry to `good`
    assert out.text == "echo: hello"
    assert len(bad.requests) == 1 and len(good.requests) == 1


# ---------------------------------------------------------------------------- API key hygiene

SECRET = "sk-test-DO-NOT-LEAK-0123456789"


def test_key_is_sent_but_never_leaked(
    fake_server: Callable[..., FakeServer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("JUDGELAB_TEST_KEY", SECRET)

    def echo_auth(body: dict[str, Any], headers: dict[str, str], n: int) -> Reply:
        # A hostile/verbose server that echoes the credential into its error body.
        status = 500 if n == 0 else 401
        return Reply(status=status, body={"error": {"message": f"bad {headers['authorization']}"}})

    srv = fake_server(echo_auth)
    b = make_backend(srv.base_url, api_key_env="JUDGELAB_TEST_KEY", max_retries=1)
    with caplog.at_level(logging.DEBUG), pytest.raises(BackendError) as info:
        run(complete_and_close(b))
    assert srv.headers[0]["authorization"] == f"Bearer {SECRET}"  # the key is actually used
    err = info.value
    shown = "".join(traceback.format_exception(err))
    for text in (str(err), err.hint or "", shown, repr(b), json.dumps(b.identity), caplog.text):
        assert SECRET not in text
    assert "***" in str(err)
    assert "JUDGELAB_TEST_KEY" in repr(b)


def test_missing_key_env_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGELAB_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError, match="JUDGELAB_UNSET_KEY") as info:
        make_backend("http://127.0.0.1:1/v1", api_key_env="JUDGELAB_UNSET_KEY")
    assert "export JUDGELAB_UNSET_KEY" in (info.value.hint or "")


def test_no_key_env_sends_dummy_key(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server()
    run(complete_and_close(make_backend(srv.base_url)))
    assert srv.headers[0]["authorization"] == "Bearer EMPTY"


# ---------------------------------------------------------------------------- concurrency, order


def test_complete_many_keeps_order_and_reports_progress(
    fake_server: Callable[..., FakeServer],
) -> None:
    n = 6

    def slower_first(body: dict[str, Any], h: dict[str, str], k: int) -> Reply:
        i = int(body["messages"][-1]["content"].split()[-1])
        return Reply(delay_s=0.05 * (n - i))  # the first request finishes last

    srv = fake_server(slower_first)
    b = make_backend(srv.base_url, concurrency=n)
    ticks: list[int] = []
    reqs = [[{"role": "user", "content": f"req {i}"}] for i in range(n)]

    async def go() -> Any:
        try:
            return await b.complete_many(reqs, GREEDY, progress=ticks.append)
        finally:
            await b.aclose()

    outs = run(go())
    assert [o.text for o in outs] == [f"echo: req {i}" for i in range(n)]
    assert ticks == [1] * n


def test_concurrency_cap_is_respected(fake_server: Callable[..., FakeServer]) -> None:
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def counting(body: dict[str, Any], h: dict[str, str], k: int) -> Reply:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return Reply()

    srv = fake_server(counting)
    b = make_backend(srv.base_url, concurrency=3)

    async def go() -> Any:
        try:
            return await b.complete_many([MSG] * 9, GREEDY)
        finally:
            await b.aclose()

    assert len(run(go())) == 9
    assert state["peak"] == 3  # the cap is reached (requests overlap) and never exceeded


def test_complete_many_fails_on_first_error(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server(lambda b, h, n: Reply(status=400, body={"error": {"message": "bad"}}))
    b = make_backend(srv.base_url, concurrency=2)

    async def go() -> Any:
        try:
            return await b.complete_many([MSG] * 5, GREEDY)
        finally:
            await b.aclose()

    with pytest.raises(BackendError, match="HTTP 400"):
        run(go())


# ---------------------------------------------------------------------------- load balancing


def test_round_robin_when_idle(fake_server: Callable[..., FakeServer]) -> None:
    a, c = fake_server(), fake_server()
    b = make_backend(a.base_url, c.base_url)

    async def go() -> None:
        try:
            for _ in range(4):
                await b.complete(MSG, GREEDY)
        finally:
            await b.aclose()

    run(go())
    assert len(a.requests) == 2 and len(c.requests) == 2


def test_least_in_flight_prefers_the_free_replica(fake_server: Callable[..., FakeServer]) -> None:
    slow = fake_server(lambda b, h, n: Reply(delay_s=0.6))
    fast = fake_server()
    b = make_backend(slow.base_url, fast.base_url, concurrency=2)

    async def go() -> Any:
        try:
            return await b.complete_many([MSG] * 8, GREEDY)
        finally:
            await b.aclose()

    run(go())
    # the slow replica gets one request and holds it; everything else goes to the free one
    assert len(slow.requests) == 1 and len(fast.requests) == 7
    assert b.in_flight == {slow.base_url: 0, fast.base_url: 0}


# ---------------------------------------------------------------------------- misc


def test_backend_survives_a_new_event_loop(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server()
    b = make_backend(srv.base_url)
    assert run(b.complete(MSG, GREEDY)).text == "echo: hello"
    assert run(complete_and_close(b)).text == "echo: hello"  # second asyncio.run, same backend


def test_wait_for_server(fake_server: Callable[..., FakeServer]) -> None:
    srv = fake_server()
    assert wait_for_server(srv.base_url, timeout_s=5) == ["fake-model"]
    t0 = time.perf_counter()
    with pytest.raises(BackendError, match="no OpenAI-compatible server"):
        wait_for_server(f"http://127.0.0.1:{unused_port()}/v1", timeout_s=0.5)
    assert time.perf_counter() - t0 < 3.0
