"""Resumable batch work over a JSONL output (L1): the engine behind ``annotate`` and ``sample``.

Each input item has a stable key. Finished results are appended (and fsynced) to the output file
as soon as their chunk completes; on a rerun the keys already in the output are skipped. A
``kill -9`` at any point therefore loses at most the chunks in flight, never finished work, and the
output ends up holding every item exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from judgelab.errors import DataError
from judgelab.store.jsonl import JsonlAppender, iter_jsonl

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumableResult:
    total: int
    done_before: int
    computed: int

    @property
    def complete(self) -> bool:
        return self.done_before + self.computed == self.total


def done_keys(path: str | Path, key_field: str = "id") -> set[str]:
    """Keys already present in an output JSONL (torn tail ignored)."""
    path = Path(path)
    if not path.exists():
        return set()
    return {str(rec[key_field]) for rec in iter_jsonl(path) if key_field in rec}


@dataclass
class ResumableJob(Generic[T]):
    """Process ``items`` in chunks with ``process`` and append results to ``output``.

    ``process(chunk)`` returns one record per item, each carrying ``key_field`` equal to that
    item's key. ``concurrency`` chunks may be in flight at once (each appended when it finishes).
    """

    output: Path
    key: Callable[[T], str]
    process: Callable[[list[T]], Awaitable[Sequence[Mapping[str, Any]]]]
    chunk_size: int = 16
    concurrency: int = 1
    key_field: str = "id"
    description: str = "working"
    show_progress: bool = True

    async def run(self, items: Iterable[T]) -> ResumableResult:
        items = list(items)
        keys = [self.key(it) for it in items]
        seen: set[str] = set()
        for k in keys:
            if k in seen:
                raise DataError(
                    f"duplicate item id {k!r} in the input",
                    "ids must be unique; deduplicate the input or fix its id column",
                )
            seen.add(k)
        already = done_keys(self.output, self.key_field) & seen
        todo = [it for it, k in zip(items, keys) if k not in already]
        chunks = [todo[i : i + self.chunk_size] for i in range(0, len(todo), self.chunk_size)]
        if already:
            log.info("%s: %d of %d already done in %s; %d to go", self.description, len(already), len(items), self.output, len(todo))

        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(items),
            initial=len(already),
            desc=self.description,
            unit="item",
            disable=not self.show_progress,
            dynamic_ncols=True,
        )
        computed = 0
        sem = asyncio.Semaphore(self.concurrency)
        with JsonlAppender(self.output) as out:

            async def one(chunk: list[T]) -> None:
                nonlocal computed
                async with sem:
                    records = list(await self.process(chunk))
                want = {self.key(it) for it in chunk}
                got = {str(r.get(self.key_field)) for r in records}
                if got != want or len(records) != len(chunk):
                    raise RuntimeError(
                        f"process() returned keys {sorted(got)[:5]}... for chunk keys {sorted(want)[:5]}..."
                    )
                out.append(records)  # single-threaded event loop: appends never interleave
                computed += len(records)
                bar.update(len(records))

            try:
                await asyncio.gather(*(one(c) for c in chunks))
            finally:
                bar.close()
        return ResumableResult(total=len(items), done_before=len(already), computed=computed)


__all__ = ["ResumableJob", "ResumableResult", "done_keys"]
