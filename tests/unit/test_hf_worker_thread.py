"""HFBackend runs every model call on one persistent worker thread, across event loops.

torch keeps per-thread caches (cuDNN attention plans on GPUs); a fresh thread per call measured
0.2–0.66x of plain transformers on an H100 (benchmarks/bench_gpu.py)."""

import asyncio
import threading

from judgelab.backends.hf import HFBackend
from judgelab.config.specs import HFBackendSpec, ModelSpec


def test_model_calls_share_one_worker_thread_across_asyncio_runs():
    backend = HFBackend(HFBackendSpec(model=ModelSpec(name="unused")))

    async def where() -> int:
        return await backend._on_worker(threading.get_ident)

    idents = {asyncio.run(where()) for _ in range(4)}
    assert len(idents) == 1 and threading.get_ident() not in idents
    other = HFBackend(HFBackendSpec(model=ModelSpec(name="unused")))

    async def where_other() -> int:
        return await other._on_worker(threading.get_ident)

    assert asyncio.run(where_other()) not in idents  # one worker per backend, not shared
