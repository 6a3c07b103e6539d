"""``sample`` stage (L4): N responses per prompt from a policy model, resumably.

Input: a JSONL of judgelab records (e.g. a split written by ``judgelab data build``); only
``id`` and ``prompt`` are used. Output: ``RUN_DIR/samples.jsonl``, one pointwise record per
response (``id = <prompt id>#<k>``, ``responses = [text]``, ``meta`` with the prompt id, sample
index, finish reason, token usage, sampling params and the backend identity) — the pool the gold
judge labels with ``judgelab annotate``.

Sample ``k`` of every prompt uses seed ``sampling.seed + k``, and requests are grouped by ``k``,
so a rerun with the same config reproduces the same responses where the backend is deterministic
for a seed (the ``hf`` backend; servers only when they honour ``seed``). Finished responses are
appended as each chunk completes; ``kill -9`` loses only the chunk in flight.

``variants`` (synthetic-world prompts only): after sampling, each response also gets rewritten
copies (``judgelab.data.world.variants``: fixed, partial, truncated, stuffed, repeated,
off_topic) with ids ``<prompt id>#<k>~<kind>`` and ``meta.variant`` — the judge-data mix that
spreads the gold score. They are derived deterministically (seeded by the stage seed and the
response id) and appended once; a rerun adds only the missing ones.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from judgelab.backends.base import Backend
from judgelab.backends.factory import make_backend
from judgelab.config.specs import BackendSpec, HFBackendSpec, SamplingSpec
from judgelab.config.stage import StageConfig
from judgelab.data.records import Record, iter_records
from judgelab.data.world.instruction import InstructionParseError
from judgelab.data.world.variants import VariantKind, make_variants
from judgelab.errors import DataError
from judgelab.store.jsonl import JsonlAppender, iter_jsonl
from judgelab.store.resumable import ResumableJob
from judgelab.store.rundir import RunDir
from judgelab.types import ChatMessage

logger = logging.getLogger(__name__)

OUTPUT_FILE = "samples.jsonl"


class SampleConfig(StageConfig):
    """Sample ``n`` responses per prompt of ``prompts`` from ``backend``."""

    stage: Literal["sample"] = "sample"
    prompts: str = Field(..., min_length=1, description="JSONL of judgelab records (id, prompt used)")
    backend: BackendSpec
    sampling: SamplingSpec = SamplingSpec(temperature=1.0, top_p=1.0, max_tokens=128, seed=0)
    n: int = Field(1, ge=1, description="responses per prompt")
    system_prompt: str | None = None
    chunk_size: int = Field(16, ge=1, description="requests per backend call (and per output append)")
    concurrency: int = Field(1, ge=1, description="chunks in flight at once (servers: raise it)")
    limit: int | None = Field(None, ge=1, description="use only the first N prompts")
    variants: list[VariantKind] = Field(
        default_factory=list,
        description="synthetic world only: rewritten copies of each response (fixed, partial, "
        "truncated, stuffed, repeated, off_topic) added to the pool to spread the gold score",
    )
    variant_max_tokens: int | None = Field(
        None, ge=1,
        description="cut every variant to its first N tokens (the policy's budget, sampling.max_tokens, "
        "so the judge-data mix holds only lengths the policy can write); None = no cap",
    )
    variant_tokenizer: str | None = Field(
        None, description="tokenizer counting variant_max_tokens; None = the hf backend's model"
    )

    @model_validator(mode="after")
    def _cap_needs_tokenizer(self) -> SampleConfig:
        if self.variant_max_tokens is not None and self.variant_tokenizer is None:
            if not isinstance(self.backend, HFBackendSpec):
                raise ValueError("variant_max_tokens with a non-hf backend needs variant_tokenizer: "
                                 "the policy model's name (alias, folder or hub id)")
        return self


@dataclass(frozen=True)
class SampleResult:
    run_dir: Path
    output: Path
    total: int
    done_before: int
    computed: int
    seconds: float


@dataclass(frozen=True)
class _Item:
    prompt: Record
    k: int

    @property
    def key(self) -> str:
        return f"{self.prompt.id}#{self.k}"


def _messages(system_prompt: str | None, prompt: str) -> list[ChatMessage]:
    msgs: list[ChatMessage] = []
    if system_prompt:
        msgs.append({"role": "system", "content": system_prompt})
    msgs.append({"role": "user", "content": prompt})
    return msgs


def run_sample(
    config: SampleConfig,
    run_dir: str | Path,
    *,
    backend: Backend | None = None,
    show_progress: bool = True,
) -> SampleResult:
    """Sample responses into ``run_dir/samples.jsonl`` (resumable; see the module docstring)."""
    t0 = time.perf_counter()
    prompts = list(iter_records(config.prompts))
    if not prompts:
        raise DataError(f"{config.prompts}: no prompts", "the prompts file is empty")
    if config.limit is not None:
        prompts = prompts[: config.limit]
    # k-major order: every chunk holds one k, hence one seed
    items = [_Item(p, k) for k in range(config.n) for p in prompts]
    run = RunDir.open(run_dir, config, stage="sample", seed=config.sampling.seed)
    with run.guard():
        result = asyncio.run(_sample(config, run, items, backend, show_progress))
        if config.variants:
            added = append_variants(run.file(OUTPUT_FILE), config.variants, seed=config.seed,
                                    cut=_token_cut(config))
            logger.info("sample: %d world variants added", added)
        n_out = sum(1 for _ in iter_jsonl(run.file(OUTPUT_FILE)))
        run.record_output(OUTPUT_FILE, records=n_out, schema="judgelab.record/v1")
        res = SampleResult(run.path, run.file(OUTPUT_FILE), len(items), result.done_before,
                           result.computed, time.perf_counter() - t0)
        run.set_status("completed", stats={"sample/computed": res.computed, "sample/seconds": res.seconds})
    logger.info("sample: %d responses (%d done before) in %s", res.total, res.done_before, res.output)
    return res


async def _sample(config: SampleConfig, run: RunDir, items: list[_Item], backend: Backend | None,
                  show_progress: bool):  # type: ignore[no-untyped-def]
    own = backend is None
    be = backend if backend is not None else make_backend(config.backend)
    identity = be.identity
    sampling_json = config.sampling.model_dump(mode="json")

    async def process(chunk: list[_Item]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for k in sorted({it.k for it in chunk}):
            group = [it for it in chunk if it.k == k]
            seed = None if config.sampling.seed is None else config.sampling.seed + k
            sampling = config.sampling.model_copy(update={"seed": seed})
            comps = await be.complete_many([_messages(config.system_prompt, it.prompt.prompt) for it in group], sampling)
            for it, c in zip(group, comps):
                rec = Record(
                    id=it.key,
                    prompt=it.prompt.prompt,
                    responses=[c.text],
                    source=f"sample:{identity.get('model', identity.get('kind'))}",
                    meta={
                        **{k2: v for k2, v in it.prompt.meta.items()},
                        "prompt_id": it.prompt.id,
                        "sample_index": it.k,
                        "seed": seed,
                        "finish_reason": c.finish_reason,
                        "reasoning": c.reasoning,
                        "completion_tokens": c.usage.completion_tokens,
                        "sampling": sampling_json,
                        "backend": identity,
                    },
                )
                out.append(rec.to_json())
        return out

    job: ResumableJob[_Item] = ResumableJob(
        output=run.file(OUTPUT_FILE), key=lambda it: it.key, process=process,
        chunk_size=config.chunk_size, concurrency=config.concurrency,
        description="sample", show_progress=show_progress,
    )
    try:
        return await job.run(items)
    finally:
        if own:
            await be.aclose()


def _token_cut(config: SampleConfig) -> Callable[[str], str] | None:
    """The ``variant_max_tokens`` cap as a text → text function (None without a cap)."""
    n = config.variant_max_tokens
    if n is None:
        return None
    from judgelab.models.tokens import load_tokenizer

    name = config.variant_tokenizer
    if name is None:
        assert isinstance(config.backend, HFBackendSpec)
        name = config.backend.model.name
    tok = load_tokenizer(name)

    def cut(text: str) -> str:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= n else tok.decode(ids[:n], skip_special_tokens=True)

    return cut


def append_variants(path: Path, kinds: list[VariantKind], *, seed: int,
                    cut: Callable[[str], str] | None = None) -> int:
    """Append the world variants of every sampled response in ``path`` that are not there yet.

    ``off_topic`` takes the response of the next sampled record (in file order, cyclically)
    whose prompt is another topic family. ``cut`` shortens each variant (the token cap), as the
    policy's budget cuts a sample. Returns the number of records added.
    """
    rows = list(iter_jsonl(path))
    have = {str(r.get("id")) for r in rows}
    base = [r for r in rows if "variant" not in (r.get("meta") or {})]
    out: list[dict[str, Any]] = []
    for i, r in enumerate(base):
        meta = r.get("meta") or {}
        family = meta.get("family", r["prompt"])
        other = next(
            (o["responses"][0] for o in (base[(i + j) % len(base)] for j in range(1, len(base)))
             if (o.get("meta") or {}).get("family", o["prompt"]) != family),
            None,
        )
        rng = random.Random(f"{seed}:{r['id']}")
        try:
            variants = make_variants(kinds, r["prompt"], r["responses"][0], rng, other_response=other)
        except InstructionParseError as e:
            raise DataError(
                f"{path}: record {r['id']!r}: variants need synthetic-world prompts ({e.message})",
                "drop `variants` for prompts that are not from the synthetic world",
            ) from e
        for kind, text in variants:
            vid = f"{r['id']}~{kind}"
            if vid in have:
                continue
            if cut is not None:
                text = cut(text)
            rec = Record(id=vid, prompt=r["prompt"], responses=[text], source=f"{r.get('source', 'sample')}+{kind}",
                         meta={**meta, "variant": kind, "variant_of": r["id"]})
            out.append(rec.to_json())
    if out:
        with JsonlAppender(path) as app:
            app.append(out)
    return len(out)


__all__ = ["OUTPUT_FILE", "SampleConfig", "SampleResult", "append_variants", "run_sample"]
