"""Start and stop a local llama.cpp OpenAI-compatible server (``llama-cpp-python[server]``).

Used by the integration-test fixtures, the backend benchmark and anything else that needs a real
OpenAI-compatible server on 127.0.0.1 without a GPU. The server runs as a child process
(``sys.executable -m llama_cpp.server``) with its output captured to a log file; ``stop()``
terminates it (SIGTERM, then SIGKILL after a grace period), and on Linux the child also receives
SIGTERM if the thread that started it dies, so no server outlives its owner (start servers from
the main thread).

Server options follow llama-cpp-python 0.3.x (``python -m llama_cpp.server --help``):
``--logits_all true`` is needed for chat ``logprobs``/``top_logprobs``; the server decodes one
request at a time (it has no parallel slots), so concurrent requests queue inside it (with
``--logits_all false`` a chat request with logprobs fails with HTTP 500).

Its sampling defaults are not neutral: ``repeat_penalty=1.1``, ``top_k=40``, ``min_p=0.05``. With
them, ``temperature=0`` does not pick the argmax token and repeated greedy requests can differ
(measured on SmolLM2). Send ``LLAMA_CPP_EXTRA_BODY`` as the backend's ``extra_body`` to sample as
``SamplingSpec`` says (an explicit ``top_k`` in the sampling spec still wins).

The child gets ``OMP_WAIT_POLICY=PASSIVE`` unless the caller's environment sets it: llama.cpp's
OpenMP threads otherwise spin while waiting, and on a machine whose cores are shared with other
work (CI, several test processes) a 2-thread server measured ~4 tok/s instead of ~45 tok/s.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from judgelab.backends.openai_compat import wait_for_server
from judgelab.errors import BackendError, MissingDependencyError

logger = logging.getLogger(__name__)

DEFAULT_ALIAS = "smollm2"

LLAMA_CPP_EXTRA_BODY: dict[str, float | int] = {"repeat_penalty": 1.0, "top_k": 0, "min_p": 0.0}
"""``extra_body`` that switches off llama-cpp-python's non-neutral sampling defaults."""


def llama_cpp_available() -> bool:
    """True when ``llama_cpp.server`` can be imported (the ``server`` extra is installed)."""
    return importlib.util.find_spec("llama_cpp") is not None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS may hand it out again; callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive SIGTERM when the thread that started it dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)``). libc is loaded here, in the parent, so the child
    only makes one system call between fork and exec (no imports, no locks).
    """
    if sys.platform != "linux":
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def set_pdeathsig() -> None:  # pragma: no cover - runs in the child
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_pdeathsig


class LlamaServer:
    """A ``llama_cpp.server`` child process serving one GGUF model under ``alias``.

    Use as a context manager (``with LlamaServer(path, log_path=...) as srv: srv.base_url``) or
    call ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        log_path: str | Path,
        alias: str = DEFAULT_ALIAS,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 2048,
        n_threads: int = 2,
        logits_all: bool = True,
        extra_args: tuple[str, ...] = (),
        startup_timeout_s: float = 120.0,
    ) -> None:
        self.model_path = Path(model_path)
        self.log_path = Path(log_path)
        self.alias = alias
        self.host = host
        self.port = port
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.logits_all = logits_all
        self.extra_args = tuple(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise BackendError("the llama.cpp server has not been started", hint="call start()")
        return f"http://{self.host}:{self.port}/v1"

    def command(self, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            self.host,
            "--port",
            str(port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
            "--logits_all",
            str(self.logits_all).lower(),
            *self.extra_args,
        ]

    def log_text(self, tail_chars: int | None = None) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return text[-tail_chars:] if tail_chars else text

    def start(self) -> Self:
        if not llama_cpp_available():
            raise MissingDependencyError(
                "llama-cpp-python", extra="server", feature="a local server"
            )
        if not self.model_path.is_file():
            raise BackendError(
                f"model file {self.model_path} does not exist",
                hint="pass the path of a .gguf file",
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fixed_port = self.port
        for _ in range(3):  # a free port can be taken between free_port() and bind: retry
            port = fixed_port or free_port(self.host)
            if self._try_start(port):
                return self
            if fixed_port is not None or "address already in use" not in self.log_text().lower():
                break
        raise BackendError(
            f"the llama.cpp server for {self.model_path.name} did not come up; log tail:\n"
            + self.log_text(tail_chars=3000),
            hint=f"full log: {self.log_path}; command: {' '.join(self.command(port))}",
        )

    def _try_start(self, port: int) -> bool:
        cmd = self.command(port)
        logger.info("starting llama.cpp server: %s (log: %s)", " ".join(cmd), self.log_path)
        env = dict(os.environ)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env["PYTHONUNBUFFERED"] = "1"  # the log file is read while the server runs
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_parent_death_signal(),  # noqa: PLW1509 - one syscall, no locks
            )
        finally:
            log.close()  # the child holds its own descriptor
        self.port = port
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                self.port = None
                return False
            with contextlib.suppress(BackendError):
                wait_for_server(self.base_url, timeout_s=0.5, poll_s=0.1)
                logger.info("llama.cpp server ready at %s", self.base_url)
                return True
        self.stop()
        return False

    def stop(self, grace_s: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("llama.cpp server (pid %d) ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.wait(timeout=grace_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = [
    "DEFAULT_ALIAS",
    "LLAMA_CPP_EXTRA_BODY",
    "LlamaServer",
    "free_port",
    "llama_cpp_available",
]
