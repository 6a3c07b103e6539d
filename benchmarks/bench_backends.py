"""Backend throughput: generated tokens/s of each backend on SmolLM2-135M, at batch 1 and 8.

    .venv/bin/python benchmarks/bench_backends.py                 # both backends, batch 1 and 8
    .venv/bin/python benchmarks/bench_backends.py --only openai --max-tokens 64 --prompts 16

Every backend gets the same prompts and the same greedy sampling with a fixed ``max_tokens``;
"batch" is the concurrency cap for the openai backend and ``batch_size`` for the hf backend.
tok/s = completion tokens actually generated / wall time of one ``complete_many`` call over all
prompts (after one warm-up request). Each ``bench_<backend>`` function returns a dict
``{"backend": label, "rows": {batch: {...}}, "notes": [...]}`` (or ``{"skipped": reason}``) and
``main`` prints them side by side.

- openai: the ``openai`` backend against a real ``llama_cpp.server`` child process (2 threads,
  n_ctx 2048, neutral sampling via ``LLAMA_CPP_EXTRA_BODY``). llama-cpp-python's server decodes one
  request at a time, so concurrency 8 mostly hides HTTP/queueing overhead; it does not batch.
- hf: the in-process transformers backend (``judgelab.backends.hf``) on the dequantised
  ``smollm2-135m-instruct`` alias (fp32, CPU).

Numbers are wall-clock on whatever machine runs this; the load average at start is printed so a
busy machine is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judgelab.config.specs import SamplingSpec
from judgelab.errors import JudgelabError
from judgelab.types import ChatMessage, Completion

TOPICS = [
    "a lighthouse keeper",
    "a lost robot",
    "a dragon who cannot fly",
    "a baker in Paris",
    "a river that talks",
    "an astronaut's first day",
    "a clockmaker's apprentice",
    "a city under the sea",
    "a fox and a crow",
    "a library at night",
    "a mountain village",
    "a detective cat",
    "a time traveller's mistake",
    "a garden on Mars",
    "a violin that plays itself",
    "a train that never stops",
]


def make_prompts(n: int) -> list[list[ChatMessage]]:
    """``n`` long-answer prompts (stories), so most requests use the whole ``max_tokens``."""
    return [
        [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}]
        for i in range(n)
    ]


def _row(outs: Sequence[Completion], wall_s: float, batch: int) -> dict[str, Any]:
    tokens = sum(o.usage.completion_tokens for o in outs)
    latencies = sorted(o.latency_s for o in outs)
    return {
        "batch": batch,
        "requests": len(outs),
        "completion_tokens": tokens,
        "wall_s": round(wall_s, 3),
        "tok_s": round(tokens / wall_s, 1) if wall_s > 0 else float("nan"),
        "req_s": round(len(outs) / wall_s, 2) if wall_s > 0 else float("nan"),
        "p50_latency_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
    }


# ---------------------------------------------------------------------------- openai backend


def bench_openai(
    prompts: Sequence[Sequence[ChatMessage]],
    max_tokens: int,
    batch_sizes: Sequence[int],
    n_threads: int = 2,
) -> dict[str, Any]:
    """The openai backend against a real llama.cpp server on SmolLM2 (Q4_1 GGUF)."""
    from judgelab.backends.llama_server import (
        LLAMA_CPP_EXTRA_BODY,
        LlamaServer,
        llama_cpp_available,
    )
    from judgelab.backends.openai_compat import OpenAICompatBackend
    from judgelab.config.specs import OpenAIBackendSpec
    from judgelab.models.shipped import find_smollm2_gguf

    if not llama_cpp_available():
        return {"skipped": "llama_cpp is not installed (pip install 'judgelab[server]')"}
    sampling = SamplingSpec(temperature=0.0, max_tokens=max_tokens, seed=0)
    log_path = Path(tempfile.mkdtemp(prefix="bench_llama_")) / "server.log"
    rows: dict[int, dict[str, Any]] = {}
    with LlamaServer(find_smollm2_gguf(), log_path=log_path, n_threads=n_threads) as server:
        for batch in batch_sizes:
            spec = OpenAIBackendSpec(
                model=server.alias,
                base_urls=[server.base_url],
                concurrency=batch,
                timeout_s=600,
                extra_body=dict(LLAMA_CPP_EXTRA_BODY),
            )

            async def timed(spec: OpenAIBackendSpec = spec) -> tuple[list[Completion], float]:
                backend = OpenAICompatBackend(spec)
                try:
                    await backend.complete(prompts[0], SamplingSpec(max_tokens=8))  # warm-up
                    t0 = time.perf_counter()
                    outs = await backend.complete_many(prompts, sampling)
                    return outs, time.perf_counter() - t0
                finally:
                    await backend.aclose()

            outs, wall = asyncio.run(timed())
            rows[batch] = _row(outs, wall, batch)
    return {
        "backend": f"openai → llama.cpp server ({n_threads} threads, Q4_1)",
        "rows": rows,
        "notes": ["llama-cpp-python's server decodes one request at a time (no parallel slots)"],
    }


# ---------------------------------------------------------------------------- hf backend
# bench_hf: owned by the hf-backend engineer. Only the public Backend API is timed
# (HFBackend(spec).complete_many), so the two columns measure the same thing. The model is loaded
# (and, on first use, prepared from the GGUF into $JUDGELAB_HOME) outside the timings.


def bench_hf(
    prompts: Sequence[Sequence[ChatMessage]],
    max_tokens: int,
    batch_sizes: Sequence[int],
) -> dict[str, Any]:
    """The in-process transformers backend on the ``smollm2-135m-instruct`` alias (fp32, CPU)."""
    try:
        from judgelab.backends.hf import HFBackend
    except ImportError as exc:
        return {"skipped": f"judgelab.backends.hf is not importable ({exc})"}
    from judgelab.config.specs import HFBackendSpec, ModelSpec

    sampling = SamplingSpec(temperature=0.0, max_tokens=max_tokens, seed=0)
    model = ModelSpec(name="smollm2-135m-instruct", dtype="float32", device="cpu")
    loaded = HFBackend(HFBackendSpec(model=model)).load()  # load once, outside the timings
    rows: dict[int, dict[str, Any]] = {}
    for batch in batch_sizes:
        backend = HFBackend.from_loaded(HFBackendSpec(model=model, batch_size=batch), loaded)

        async def timed(backend: Any = backend) -> tuple[list[Completion], float]:
            await backend.complete(prompts[0], SamplingSpec(max_tokens=8))  # warm-up
            t0 = time.perf_counter()
            outs = await backend.complete_many(prompts, sampling)
            return outs, time.perf_counter() - t0

        outs, wall = asyncio.run(timed())
        rows[batch] = _row(outs, wall, batch)
    import torch

    return {
        "backend": f"hf (transformers, fp32, {loaded.device}, {torch.get_num_threads()} torch threads)",
        "rows": rows,
        "notes": [
            (
                "batch = left-padded generate() over batch_size prompts (sorted by length); "
                "greedy, no stop strings, no logprobs"
            ),
            "torch threads spin: on a shared, busy CPU set OMP_NUM_THREADS=1 for stabler numbers",
        ],
    }


# ---------------------------------------------------------------------------- table

BENCHES = {"openai": bench_openai, "hf": bench_hf}


def render_table(results: dict[str, dict[str, Any]], batch_sizes: Sequence[int]) -> str:
    names = list(results)
    header = ["batch"] + [f"{n} tok/s" for n in names] + [f"{n} p50 lat s" for n in names]
    lines = [header]
    for batch in batch_sizes:
        cells = [str(batch)]
        for key in ("tok_s", "p50_latency_s"):
            for n in names:
                row = results[n].get("rows", {}).get(batch)
                cells.append("-" if row is None else f"{row[key]}")
        lines.append(cells)
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    out = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    for n in names:
        res = results[n]
        if "skipped" in res:
            out.append(f"{n}: skipped ({res['skipped']})")
            continue
        out.append(f"{n}: {res['backend']}")
        for batch, row in res["rows"].items():
            out.append(
                f"  batch {batch}: {row['completion_tokens']} tokens / {row['requests']} requests "
                f"in {row['wall_s']} s ({row['req_s']} req/s)"
            )
        out.extend(f"  note: {note}" for note in res.get("notes", []))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(BENCHES), action="append", default=None)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, action="append", default=None, help="repeatable")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    batch_sizes = args.batch or [1, 8]
    prompts = make_prompts(args.prompts)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    sys.stdout.write(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load avg at start "
        f"{load[0]:.2f}; {len(prompts)} prompts x max_tokens {args.max_tokens}, greedy\n\n"
    )
    results: dict[str, dict[str, Any]] = {}
    failed = False
    for name in args.only or list(BENCHES):
        try:
            results[name] = BENCHES[name](prompts, args.max_tokens, batch_sizes)
        except JudgelabError as exc:
            results[name] = {"skipped": f"failed: {exc.message}"}
            failed = True
    sys.stdout.write(render_table(results, batch_sizes) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
