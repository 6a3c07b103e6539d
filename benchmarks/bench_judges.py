"""Judge throughput (judgements/s) on SmolLM2-135M-Instruct, CPU.

    .venv/bin/python benchmarks/bench_judges.py                   # all three parts
    .venv/bin/python benchmarks/bench_judges.py --only cache --cache-items 20000

(a) hf backend: ``readout: expected_only`` (one forward pass per item, the expected score read at
    ``Score: ``) vs. generate-then-parse (``readout: text``, greedy, ``max_tokens`` new tokens) and
    ``text+expected`` (generate, parse, then a forward pass at the score position of the parsed
    ones). Same items, same loaded model, ``batch_size`` 8, after a warm-up call.
(b) openai backend → a real llama.cpp server: the judge (``readout: text+expected``, logprobs on)
    at concurrency 1, 4 and 16, vs. the server's saturation throughput, measured as the raw
    ``openai`` SDK firing the same requests all at once (no judge, no backend layer).
    llama-cpp-python's server decodes one request at a time, so saturation is its serial rate.
(c) cache hits: ``Judge.score_pointwise`` over items that are all in the SQLite cache
    (key building + one ``get_many`` + JSON decoding + ``Judgement`` rebuilding), and raw
    ``JudgementCache.get`` / ``get_many`` lookups/s; plus the judge's own per-call overhead
    (render, keys, parse) with an instant backend, one item per call, as the reward path uses it.

Numbers are wall-clock on whatever machine runs this; the load average is printed so a busy
machine is visible. Each judge gets fresh items without a cache (a/b), so nothing is served from
a cache there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judgelab.errors import JudgelabError
from judgelab.judges import Judge, JudgementCache, JudgeSpec, PointwiseItem

INSTRUCTIONS = [
    "Write one sentence about cats.",
    "Give two tips for sleeping better.",
    "Explain what a prime number is in one sentence.",
    "Name three colours of the rainbow.",
]
RESPONSES = [
    "Cats are independent animals that sleep a lot.",
    "Go to bed at the same time every night, and avoid screens before sleep.",
    "A prime number is a whole number above 1 divisible only by 1 and itself.",
    "Red, green and blue.",
    "I don't know.",
    "Dogs bark loudly at night.",
]


def make_items(n: int, salt: str = "") -> list[PointwiseItem]:
    return [
        PointwiseItem(INSTRUCTIONS[i % len(INSTRUCTIONS)], f"{RESPONSES[i % len(RESPONSES)]}{salt} (#{i})")
        for i in range(n)
    ]


def _rate(n: int, wall: float) -> float:
    return n / wall if wall > 0 else float("nan")


# ---------------------------------------------------------------------------- (a) hf
def bench_hf(n_items: int, max_tokens: int, batch_size: int) -> list[dict[str, Any]]:
    from judgelab.backends.hf import HFBackend
    from judgelab.config.specs import HFBackendSpec, ModelSpec

    model = ModelSpec(name="smollm2-135m-instruct", dtype="float32", device="cpu")
    backend_spec = HFBackendSpec(model=model, batch_size=batch_size)
    backend = HFBackend(backend_spec)
    backend.load()
    rows = []
    for label, readout in [
        ("expected score, 1 forward pass", "expected_only"),
        (f"generate ≤{max_tokens} tok + parse", "text"),
        (f"generate ≤{max_tokens} tok + parse + read-out", "text+expected"),
    ]:
        spec = JudgeSpec(
            backend=backend_spec, readout=readout, min_valid_mass=0.0,
            sampling={"temperature": 0.0, "max_tokens": max_tokens, "seed": 0},
        )
        judge = Judge(spec, backend=backend)
        items = make_items(n_items, salt=f" [{readout}]")

        async def timed(judge: Judge = judge, items: list[PointwiseItem] = items) -> tuple[list, float]:
            await judge.score_pointwise(make_items(1, salt=" warm-up"))
            t0 = time.perf_counter()
            out = await judge.score_pointwise(items)
            return out, time.perf_counter() - t0

        out, wall = asyncio.run(timed())
        rows.append({
            "part": "a) hf", "setting": label, "n": len(out), "wall_s": wall, "per_s": _rate(len(out), wall),
            "invalid": sum(not j.verdict.parsed for j in out),
            "with_expected": sum(j.expected_score is not None for j in out),
        })
    return rows


# ---------------------------------------------------------------------------- (b) openai
def bench_openai(n_items: int, max_tokens: int, levels: Sequence[int]) -> list[dict[str, Any]]:
    import openai

    from judgelab.backends.llama_server import (
        LLAMA_CPP_EXTRA_BODY,
        LlamaServer,
        llama_cpp_available,
    )
    from judgelab.models.shipped import find_smollm2_gguf

    if not llama_cpp_available():
        return [{"part": "b) openai", "setting": "skipped: llama_cpp not installed"}]
    log = Path(tempfile.mkdtemp(prefix="bench_judges_")) / "server.log"
    rows = []
    with LlamaServer(find_smollm2_gguf(), log_path=log, n_threads=2) as server:
        def spec(concurrency: int) -> JudgeSpec:
            return JudgeSpec(
                backend={"kind": "openai", "model": server.alias, "base_urls": [server.base_url],
                         "concurrency": concurrency, "timeout_s": 600,
                         "extra_body": dict(LLAMA_CPP_EXTRA_BODY)},
                readout="text+expected",
                sampling={"temperature": 0.0, "max_tokens": max_tokens, "seed": 0},
            )

        items = make_items(n_items)
        for c in levels:
            judge = Judge(spec(c))

            async def timed(judge: Judge = judge) -> tuple[list, float]:
                try:
                    await judge.score_pointwise(make_items(1, salt=" warm-up"))
                    t0 = time.perf_counter()
                    out = await judge.score_pointwise(items)
                    return out, time.perf_counter() - t0
                finally:
                    await judge.aclose()

            out, wall = asyncio.run(timed())
            rows.append({"part": "b) openai", "setting": f"judge, concurrency {c}", "n": len(out), "wall_s": wall,
                         "per_s": _rate(len(out), wall), "invalid": sum(not j.verdict.parsed for j in out),
                         "with_expected": sum(j.expected_score is not None for j in out)})

        # saturation: the same requests straight through the SDK, all in flight at once
        judge = Judge(spec(1))
        kwargs = [judge.backend.request_kwargs(judge.template.render(
            {"instruction": it.instruction, "response": it.response}), judge.sampling) for it in items]

        async def raw() -> float:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0, timeout=600)
            try:
                await client.chat.completions.create(**kwargs[0])
                t0 = time.perf_counter()
                await asyncio.gather(*(client.chat.completions.create(**k) for k in kwargs))
                return time.perf_counter() - t0
            finally:
                await client.close()

        wall = asyncio.run(raw())
        rows.append({"part": "b) openai", "setting": f"server saturation (raw SDK, {len(items)} in flight)",
                     "n": len(items), "wall_s": wall, "per_s": _rate(len(items), wall)})
    return rows


# ---------------------------------------------------------------------------- (c) cache
def bench_cache(n_items: int) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench_cache_"))
    cache = JudgementCache(tmp / "cache.sqlite")
    spec = JudgeSpec(backend={"kind": "rules"})
    from judgelab.data.world.generate import WorldConfig, family_ids, generate_prompts

    prompts = [r.prompt for r in generate_prompts(WorldConfig(), min(n_items, 2000), family_ids(), seed="bench")]
    items = [PointwiseItem(prompts[i % len(prompts)], f"It began with a response, number {i}.") for i in range(n_items)]
    judge = Judge(spec, cache=cache)
    t0 = time.perf_counter()
    asyncio.run(judge.score_pointwise(items))  # fill (rules gold: no model)
    fill = time.perf_counter() - t0
    judge = Judge(spec, cache=cache)
    t0 = time.perf_counter()
    out = asyncio.run(judge.score_pointwise(items))
    wall = time.perf_counter() - t0
    assert all(j.cached for j in out)
    rows = [
        {"part": "c) cache", "setting": "fill: rules gold + cache writes", "n": n_items, "wall_s": fill,
         "per_s": _rate(n_items, fill)},
        {"part": "c) cache", "setting": "Judge.score_pointwise, all hits", "n": n_items, "wall_s": wall,
         "per_s": _rate(n_items, wall)},
    ]
    keys = [k for k, in cache._conn().execute("SELECT key FROM judgements")]
    t0 = time.perf_counter()
    cache.get_many(keys)
    wall = time.perf_counter() - t0
    rows.append({"part": "c) cache", "setting": "JudgementCache.get_many", "n": len(keys), "wall_s": wall,
                 "per_s": _rate(len(keys), wall)})
    sample = keys[: min(len(keys), 5000)]
    t0 = time.perf_counter()
    for k in sample:
        cache.get(k)
    wall = time.perf_counter() - t0
    rows.append({"part": "c) cache", "setting": "JudgementCache.get (one at a time)", "n": len(sample),
                 "wall_s": wall, "per_s": _rate(len(sample), wall)})
    cache.close()
    rows.append(_bench_overhead())
    return rows


class _InstantBackend:
    """Answers 'Score: 5' at once: isolates the judge's own per-call cost (render, keys, parse)."""

    @property
    def identity(self) -> dict[str, str]:
        return {"kind": "instant"}

    async def complete_many(self, requests, sampling, progress=None):  # type: ignore[no-untyped-def]
        from judgelab.types import Completion

        return [Completion(text="Score: 5", finish_reason="stop") for _ in requests]

    async def aclose(self) -> None:
        return None


def _bench_overhead(n_calls: int = 2000) -> dict[str, Any]:
    """Per-call overhead of ``await judge.score_pointwise([item])`` (the in-process reward path)."""
    spec = JudgeSpec(backend={"kind": "openai", "model": "instant", "base_urls": ["http://127.0.0.1:9/v1"]})
    judge = Judge(spec, backend=_InstantBackend())  # type: ignore[arg-type]
    item = make_items(1)[0]

    async def loop() -> float:
        for _ in range(100):
            await judge.score_pointwise([item])
        t0 = time.perf_counter()
        for _ in range(n_calls):
            await judge.score_pointwise([item])
        return time.perf_counter() - t0

    wall = asyncio.run(loop())
    return {"part": "c) cache", "setting": "judge overhead, no cache, 1 item/call", "n": n_calls,
            "wall_s": wall, "per_s": _rate(n_calls, wall)}


# ---------------------------------------------------------------------------- table
def render(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'part':10s} {'setting':48s} {'n':>6s} {'wall s':>8s} {'judgements/s':>13s} {'invalid':>8s} {'E[score]':>8s}"]
    for r in rows:
        if "n" not in r:
            lines.append(f"{r['part']:10s} {r['setting']}")
            continue
        inv = "" if "invalid" not in r else str(r["invalid"])
        exp = "" if "with_expected" not in r else str(r["with_expected"])
        lines.append(f"{r['part']:10s} {r['setting']:48s} {r['n']:6d} {r['wall_s']:8.2f} {r['per_s']:13.2f} {inv:>8s} {exp:>8s}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="hf,openai,cache", help="comma list of: hf, openai, cache")
    ap.add_argument("--items", type=int, default=16, help="items per setting in (a) and (b)")
    ap.add_argument("--max-tokens", type=int, default=8, help="generated tokens (non-reasoning verdict)")
    ap.add_argument("--cache-items", type=int, default=5000)
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rows: list[dict[str, Any]] = []
    try:
        if "hf" in parts:
            rows += bench_hf(args.items, args.max_tokens, batch_size=8)
        if "openai" in parts:
            rows += bench_openai(args.items, args.max_tokens, levels=(1, 4, 16))
        if "cache" in parts:
            rows += bench_cache(args.cache_items)
    except JudgelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(render(rows))
    print("invalid = verdicts SmolLM2 did not write in the grammar (kept, never scored); "
          "E[score] = judgements with an expected score")
    return 0


if __name__ == "__main__":
    sys.exit(main())
