"""Study splits (L1): judge-train / judge-eval / policy-train / policy-test, seeded and disjoint.

Guarantees:

- **No prompt in two splits.** Records are grouped by ``prompt_hash`` (normalised text) and a
  group is never divided between splits: AlpacaEval's 7 judged outputs of one instruction all
  land in the same split.
- **Reproducible.** The result depends only on the set of records, the sizes and the seed (groups
  are sorted by hash before the seeded shuffle, so input order does not matter).
- **Held-out families** (``HoldoutSpec``): when records carry ``meta[key]`` (the synthetic world's
  ``family`` = topic), a seeded fraction of families is reserved for the held-out splits
  (default judge-eval and policy-test), so those measure generalisation to unseen topics.

Sizes count *records* for judge splits (an example is a prompt with its response(s)) and
*prompts* for policy splits (one record per prompt). ``None`` means "all that is left" (at most one
split). Allocation order: judge_eval, policy_test, judge_train, policy_train (fixed sizes first).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, model_validator

from judgelab.config.specs import StrictModel
from judgelab.data.records import Record
from judgelab.errors import DataError

SplitName = Literal["judge_train", "judge_eval", "policy_train", "policy_test"]
SPLIT_NAMES: tuple[SplitName, ...] = ("judge_train", "judge_eval", "policy_train", "policy_test")
ALLOCATION_ORDER: tuple[SplitName, ...] = ("judge_eval", "policy_test", "judge_train", "policy_train")
JUDGE_SPLITS: frozenset[str] = frozenset({"judge_train", "judge_eval"})


class SplitSizes(StrictModel):
    """How big each split is (paper: ~164K judge examples, 738 judge-eval, ~117K policy prompts,
    1K policy-test). ``null`` = everything left over (at most one split)."""

    judge_train: int | None = Field(2000, ge=0, description="records (examples); null = the rest")
    judge_eval: int | None = Field(200, ge=0, description="records (examples)")
    policy_train: int | None = Field(2000, ge=0, description="prompts; null = the rest")
    policy_test: int | None = Field(200, ge=0, description="prompts")

    @model_validator(mode="after")
    def _one_rest(self) -> SplitSizes:
        rest = [n for n in SPLIT_NAMES if getattr(self, n) is None]
        if len(rest) > 1:
            raise ValueError(f"only one split can be null ('the rest'), got {rest}; give the others a size")
        return self

    def get(self, name: str) -> int | None:
        return getattr(self, name)


class HoldoutSpec(StrictModel):
    """Keep a fraction of prompt families out of the training splits."""

    key: str = Field("family", description="meta key naming a record's family")
    fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of families reserved for the held-out splits")
    splits: list[SplitName] = Field(default_factory=lambda: ["judge_eval", "policy_test"])

    @model_validator(mode="after")
    def _some_of_each(self) -> HoldoutSpec:
        if not self.splits or set(self.splits) == set(SPLIT_NAMES):
            raise ValueError("holdout.splits must name some but not all splits")
        return self


@dataclass
class SplitResult:
    splits: dict[str, list[Record]]
    unused_records: int = 0
    test_groups: list[str] = field(default_factory=list)
    train_groups: list[str] = field(default_factory=list)


def _h(seed: int | str, text: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{text}".encode()).hexdigest()


def partition_groups(groups: Iterable[str], fraction: float, seed: int | str) -> tuple[list[str], list[str]]:
    """Split group names into (train, test): the ``round(fraction × n)`` (≥1) with the smallest
    seeded hash go to test. Independent of input order."""
    uniq = sorted(set(groups))
    if len(uniq) < 2:
        raise DataError(
            f"cannot hold out families: only {len(uniq)} distinct famil{'y' if len(uniq) == 1 else 'ies'}",
            "set holdout: null, or use data with more families",
        )
    n_test = min(len(uniq) - 1, max(1, round(fraction * len(uniq))))
    ordered = sorted(uniq, key=lambda g: _h(seed, g))
    test = sorted(ordered[:n_test])
    train = sorted(ordered[n_test:])
    return train, test


def _group_by_prompt(records: Sequence[Record]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.prompt_hash, []).append(r)
    return groups


def _allocate(
    groups: list[list[Record]], names: list[SplitName], sizes: SplitSizes, side: str
) -> tuple[dict[str, list[Record]], int]:
    out: dict[str, list[Record]] = {n: [] for n in names}
    pos = 0
    unused = 0
    ordered = [n for n in ALLOCATION_ORDER if n in names and sizes.get(n) is not None]
    ordered += [n for n in names if sizes.get(n) is None]
    for name in ordered:
        target = sizes.get(name)
        judge = name in JUDGE_SPLITS
        taken: list[Record] = []
        while pos < len(groups) and (target is None or len(taken) < target):
            g = groups[pos]
            pos += 1
            if judge:
                room = len(g) if target is None else target - len(taken)
                taken.extend(g[:room])
                unused += len(g) - min(room, len(g))
            else:
                taken.append(g[0])
                unused += len(g) - 1
        if target is not None and len(taken) < target:
            unit = "records" if judge else "prompts"
            raise DataError(
                f"not enough data for split {name}: {target} {unit} asked, {len(taken)} left on the {side} side",
                "lower the split sizes, set one split to null (the rest), or add data",
            )
        out[name] = taken
    unused += sum(len(g) for g in groups[pos:])
    return out, unused


def assign_splits(
    records: Sequence[Record],
    sizes: SplitSizes,
    seed: int,
    *,
    holdout: HoldoutSpec | None = None,
    test_groups: Iterable[str] | None = None,
) -> SplitResult:
    """Assign records to the four splits (see the module docstring).

    ``test_groups`` fixes the held-out families (the synthetic build draws them before it
    generates prompts); otherwise they are drawn from the families present.
    """
    groups = _group_by_prompt(records)
    keys = sorted(groups)
    active = holdout is not None and any(holdout.key in r.meta for r in records)
    if not active:
        rng = random.Random(f"judgelab-splits:{seed}:all")
        order = [groups[k] for k in keys]
        rng.shuffle(order)
        splits, unused = _allocate(order, list(SPLIT_NAMES), sizes, "only")
        return SplitResult({n: splits[n] for n in SPLIT_NAMES}, unused)

    assert holdout is not None
    missing = [r.id for r in records if holdout.key not in r.meta]
    if missing:
        raise DataError(
            f"holdout by meta key {holdout.key!r}: {len(missing)} record(s) lack it (first: {missing[0]})",
            "give every record that meta key, or set holdout: null",
        )
    family = {k: str(groups[k][0].meta[holdout.key]) for k in keys}
    if test_groups is None:
        train_f, test_f = partition_groups(family.values(), holdout.fraction, seed)
    else:
        test_f = sorted(set(test_groups))
        train_f = sorted(set(family.values()) - set(test_f))
    test_set = set(test_f)
    test_names = [n for n in SPLIT_NAMES if n in holdout.splits]
    train_names = [n for n in SPLIT_NAMES if n not in holdout.splits]
    result: dict[str, list[Record]] = {}
    unused = 0
    for side, names, in_side in (
        ("held-out", test_names, lambda k: family[k] in test_set),
        ("training", train_names, lambda k: family[k] not in test_set),
    ):
        rng = random.Random(f"judgelab-splits:{seed}:{side}")
        order = [groups[k] for k in keys if in_side(k)]
        rng.shuffle(order)
        part, u = _allocate(order, names, sizes, side)
        result.update(part)
        unused += u
    return SplitResult({n: result[n] for n in SPLIT_NAMES}, unused, test_f, train_f)


def check_disjoint(splits: dict[str, list[Record]]) -> dict[str, int]:
    """Shared prompt count for every pair of splits (all zero when the splits are disjoint)."""
    hashes = {n: {r.prompt_hash for r in recs} for n, recs in splits.items()}
    names = list(splits)
    return {
        f"{a}&{b}": len(hashes[a] & hashes[b]) for i, a in enumerate(names) for b in names[i + 1 :]
    }


__all__ = [
    "ALLOCATION_ORDER",
    "JUDGE_SPLITS",
    "SPLIT_NAMES",
    "HoldoutSpec",
    "SplitName",
    "SplitResult",
    "SplitSizes",
    "assign_splits",
    "check_disjoint",
    "partition_groups",
]
