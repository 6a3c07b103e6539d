"""Per-check agreement of a reasoning judge's trace with the gold's (L3, pure Python).

A checklist gold (the synthetic world's rules gold) writes one ``NAME: PASS|FAIL`` line per check
(brief trace: ``Rule 2: FAIL.``; full trace: ``3. Rule (Include the word "x"): PASS - ...``). A
distilled reasoning judge learns to write the same lines; whether its final score follows the
gold depends on whether those lines do. ``compute_check_agreement`` measures that: over every
check line of the gold traces, the share where the judge's trace has the same check with the same
outcome (a check the judge left out counts as a disagreement).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

_CHECK = re.compile(r"^\s*(?:\d+\.\s*)?(?P<name>[^:\n]{1,120}?):\s*(?P<outcome>PASS|FAIL)\b", re.MULTILINE)


def parse_checks(trace: str | None) -> dict[str, bool]:
    """``{check name: passed}`` from a checklist trace (the last line of a name wins)."""
    if not trace:
        return {}
    return {m.group("name").strip(): m.group("outcome") == "PASS" for m in _CHECK.finditer(trace)}


@dataclass
class CheckAgreement:
    """Agreement over the gold's check lines; per check name too."""

    agreement: float | None  # share of gold check lines the judge matched (None: no gold lines)
    n_lines: int
    n_traces: int
    missing: int  # gold check lines the judge's trace did not have
    per_check: dict[str, tuple[float, int]] = field(default_factory=dict)  # name → (agreement, n)

    def to_dict(self) -> dict[str, object]:
        return {"agreement": self.agreement, "n_lines": self.n_lines, "n_traces": self.n_traces,
                "missing": self.missing,
                "per_check": {k: {"agreement": a, "n": n} for k, (a, n) in self.per_check.items()}}


def compute_check_agreement(pairs: Iterable[tuple[str | None, str | None]]) -> CheckAgreement:
    """``pairs`` = (judge trace, gold trace) per item; see the module docstring."""
    hit: dict[str, int] = defaultdict(int)
    tot: dict[str, int] = defaultdict(int)
    missing = n_traces = 0
    for judge_trace, gold_trace in pairs:
        gold = parse_checks(gold_trace)
        if not gold:
            continue
        n_traces += 1
        mine = parse_checks(judge_trace)
        for name, passed in gold.items():
            key = re.sub(r"\s+", " ", name)
            tot[key] += 1
            if name not in mine:
                missing += 1
            elif mine[name] == passed:
                hit[key] += 1
    n = sum(tot.values())
    per = {k: (hit[k] / tot[k], tot[k]) for k in sorted(tot)}
    return CheckAgreement(sum(hit.values()) / n if n else None, n, n_traces, missing, per)


__all__ = ["CheckAgreement", "compute_check_agreement", "parse_checks"]
