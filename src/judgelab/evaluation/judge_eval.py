"""Judge-vs-gold metrics and the side-by-side table (L3) for ``judgelab eval-judge``.

One row per judge, keys as documented in docs/records.md (``judgelab.judge_eval/v1``):

- pointwise: ``alpha`` = Krippendorff's α (interval) between the judge's *reward value* (its
  expected score where it was read out, else its parsed score — what a policy would be trained
  on) and the gold score; ``alpha_verdict`` = α on the parsed integer verdicts; ``ece`` =
  calibration error of the expected score (score units, ``n_bins`` equal-width bins), null when
  the judge gives no expected score; Pearson / Spearman as extras;
- pairwise: ``accuracy`` = share of judged orders whose choice equals the gold choice (an item
  judged in both orders contributes the mean of its two orders; an invalid verdict counts as
  wrong); ``accuracy_both_orders`` = share of items right in *both* orders;
  ``position_consistency`` = share of items whose two orders name the same response (invalid =
  inconsistent); arena verdicts count as A (``A>>B``, ``A>B``), B (``B>A``, ``B>>A``) or tie;
- both: ``invalid_rate`` over all judgements (both orders), ``mean_reasoning_tokens`` (0 for a
  judge that writes no reasoning; null when no tokenizer was available, then
  ``mean_reasoning_words`` still says how long), and 95 % seeded percentile-bootstrap CIs over
  items (``judgelab.metrics.compute_bootstrap_ci``).

Invalid verdicts are never replaced by a score: α is computed on the valid items and the invalid
share is reported beside it. Gold ties are not scored for pairwise accuracy (the caller drops
them and reports how many).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from judgelab.metrics import (
    compute_alpha_vs_gold,
    compute_bootstrap_ci,
    compute_calibration_error,
    compute_pearson,
    compute_spearman,
)

ARENA_TO_PAIR = {"A>>B": "A", "A>B": "A", "A=B": "tie", "B>A": "B", "B>>A": "B", "A": "A", "B": "B"}


@dataclass(frozen=True)
class BootstrapSettings:
    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


def _ci(ci: Any) -> list[float] | None:
    if ci is None or math.isnan(ci.low) or math.isnan(ci.high):
        return None
    return [ci.low, ci.high]


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def reasoning_summary(token_counts: Sequence[int] | None, word_counts: Sequence[int]) -> dict[str, Any]:
    return {
        "mean_reasoning_tokens": None if token_counts is None else _num(_mean(token_counts)),
        "mean_reasoning_words": _num(_mean(word_counts)),
    }


def compute_pointwise_row(
    gold: Sequence[int],
    verdicts: Sequence[int | None],
    rewards: Sequence[float | None],
    expected: Sequence[float | None],
    *,
    low: int,
    high: int,
    n_bins: int = 10,
    bootstrap: BootstrapSettings = BootstrapSettings(),
) -> dict[str, Any]:
    """Metrics of one pointwise judge (``None`` = invalid / not read out); see the module doc."""
    n = len(gold)
    boot = {"n_resamples": bootstrap.n_resamples, "confidence": bootstrap.confidence, "seed": bootstrap.seed}
    alpha_ci = compute_bootstrap_ci(compute_alpha_vs_gold, rewards, gold, **boot) if n else None
    verdict_ci = compute_bootstrap_ci(compute_alpha_vs_gold, verdicts, gold, **boot) if n else None
    has_expected = any(e is not None for e in expected)
    calib = compute_calibration_error(expected, gold, low=low, high=high, n_bins=n_bins) if has_expected else None
    n_expected = sum(e is not None for e in expected)
    sources = {("expected" if e is not None else "verdict") for e, r in zip(expected, rewards) if r is not None}
    return {
        "protocol": "pointwise",
        "n": n,
        "alpha": _num(alpha_ci.value) if alpha_ci else None,
        "alpha_ci": _ci(alpha_ci),
        "alpha_source": "mixed" if len(sources) > 1 else (sources.pop() if sources else None),
        "alpha_verdict": _num(verdict_ci.value) if verdict_ci else None,
        "alpha_verdict_ci": _ci(verdict_ci),
        "pearson": _num(compute_pearson(rewards, gold)) if n else None,
        "spearman": _num(compute_spearman(rewards, gold)) if n else None,
        "accuracy": None,
        "accuracy_ci": None,
        "position_consistency": None,
        "ece": _num(calib.ece) if calib else None,
        "calibration_bins": [asdict(b) for b in calib.bins] if calib else None,
        "n_expected": n_expected,
        "mean_judge_score": _num(_mean([r for r in rewards if r is not None])),
        "mean_gold_score": _num(_mean(list(gold))),
    }


def to_pair_choice(choice: str | None) -> str | None:
    """A pairwise or arena choice as A / B / tie (None stays None)."""
    return None if choice is None else ARENA_TO_PAIR.get(choice)


def compute_pairwise_row(
    gold: Sequence[str],
    first: Sequence[str | None],
    second: Sequence[str | None] | None,
    *,
    bootstrap: BootstrapSettings = BootstrapSettings(),
) -> dict[str, Any]:
    """Metrics of one pairwise judge.

    ``gold``: the gold choice per item (A/B) in the given order; ``first``: the judge's choice with
    the responses in the given order; ``second``: its choice with them swapped, *mapped back* to
    the given order (``Battle.second_choice``), or None when only one order was judged. Arena
    choices are mapped to A / B / tie first.
    """
    n = len(gold)
    f = [to_pair_choice(c) for c in first]
    s = None if second is None else [to_pair_choice(c) for c in second]
    per_item = pairwise_item_accuracy(gold, first, second)
    boot = {"n_resamples": bootstrap.n_resamples, "confidence": bootstrap.confidence, "seed": bootstrap.seed}
    acc = compute_bootstrap_ci(_mean, per_item, **boot) if n else None
    row: dict[str, Any] = {
        "protocol": "pairwise",
        "n": n,
        "alpha": None,
        "alpha_ci": None,
        "accuracy": _num(acc.value) if acc else None,
        "accuracy_ci": _ci(acc),
        "accuracy_both_orders": None,
        "accuracy_both_orders_ci": None,
        "position_consistency": None,
        "position_consistency_ci": None,
        "ece": None,
        "choice_rate_first_position": None,
    }
    if s is not None and n:
        both = [float(fc == g and sc == g) for fc, sc, g in zip(f, s, gold)]
        consistent = [float(fc is not None and fc == sc) for fc, sc in zip(f, s)]
        both_ci = compute_bootstrap_ci(_mean, both, **boot)
        pc_ci = compute_bootstrap_ci(_mean, consistent, **boot)
        # how often the judge picked whatever was shown first (position bias), over valid verdicts
        shown_first = [c == "A" for c in f if c in ("A", "B")] + [c == "B" for c in s if c in ("A", "B")]
        row.update(
            accuracy_both_orders=_num(both_ci.value), accuracy_both_orders_ci=_ci(both_ci),
            position_consistency=_num(pc_ci.value), position_consistency_ci=_ci(pc_ci),
            choice_rate_first_position=_num(_mean([float(x) for x in shown_first])),
        )
    if n:
        row["gold_rate_a"] = _num(_mean([float(g == "A") for g in gold]))
    return row


MISSING_GROUP = "(none)"
"""The breakdown group of an item whose ``meta`` lacks the key (e.g. a sampled, not rewritten, response)."""


def compute_breakdown(
    groups: Sequence[str],
    gold: Sequence[Any],
    values: Sequence[Any],
    *,
    protocol: str,
) -> list[dict[str, Any]]:
    """Per group (in first-seen order): ``n``; pointwise ``n_valid``, ``mean_judge_score`` (the mean
    reward value — the expected score where read out — over valid items), ``mean_gold_score`` (all
    items of the group), ``invalid_rate``; pairwise ``accuracy`` (per-item values as in
    ``compute_pairwise_row``: the mean over the judged orders, invalid = wrong).

    ``values``: per item the judge's reward value (pointwise, None = invalid) or its per-item
    accuracy in [0, 1] (pairwise)."""
    order: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(g, []).append(i)
    out: list[dict[str, Any]] = []
    for g, idx in order.items():
        row: dict[str, Any] = {"value": g, "n": len(idx)}
        if protocol == "pointwise":
            valid = [float(values[i]) for i in idx if values[i] is not None]
            row.update(n_valid=len(valid), mean_judge_score=_num(_mean(valid)),
                       mean_gold_score=_num(_mean([float(gold[i]) for i in idx])),
                       invalid_rate=(len(idx) - len(valid)) / len(idx))
        else:
            row["accuracy"] = _num(_mean([float(values[i]) for i in idx]))
        out.append(row)
    return out


def pairwise_item_accuracy(gold: Sequence[str], first: Sequence[str | None],
                           second: Sequence[str | None] | None) -> list[float]:
    """Per item: 1/0 for the judged order, or the mean over both orders (invalid = wrong)."""
    f = [to_pair_choice(c) for c in first]
    s = None if second is None else [to_pair_choice(c) for c in second]
    return [float(fc == g) if s is None else (float(fc == g) + float(s[i] == g)) / 2
            for i, (fc, g) in enumerate(zip(f, gold))]


def render_breakdown_md(key: str, rows: Sequence[dict[str, Any]], protocol: str) -> list[str]:
    """Markdown lines: one table per judge of its ``breakdown`` rows."""
    lines = ["", f"## By meta.{key}", ""]
    for row in rows:
        b = row.get("breakdown") or {}
        if not b.get("groups"):
            continue
        lines += [f"**{row['name']}**", ""]
        if protocol == "pointwise":
            lines += [f"| meta.{key} | n | mean judge score | mean gold score | invalid |", "|---|---|---|---|---|"]
            for g in b["groups"]:
                js, gs = g["mean_judge_score"], g["mean_gold_score"]
                lines.append(f"| {g['value']} | {g['n']} | {'—' if js is None else f'{js:.2f}'} | "
                             f"{'—' if gs is None else f'{gs:.2f}'} | {100 * g['invalid_rate']:.0f}% |")
        else:
            lines += [f"| meta.{key} | n | accuracy |", "|---|---|---|"]
            for g in b["groups"]:
                acc = g["accuracy"]
                lines.append(f"| {g['value']} | {g['n']} | {'—' if acc is None else f'{acc:.3f}'} |")
        lines.append("")
    lines.append(f"{MISSING_GROUP}: items without meta.{key}. Mean judge score: over valid verdicts "
                 "(the expected score where read out).")
    return lines


# ------------------------------------------------------------------------------------ rendering
COLUMNS: tuple[tuple[str, str], ...] = (
    ("judge", "name"),
    ("kind", "kind"),
    ("n", "n"),
    ("α (interval)", "alpha"),
    ("accuracy", "accuracy"),
    ("pos. consistency", "position_consistency"),
    ("invalid", "invalid_rate"),
    ("reasoning tok.", "mean_reasoning_tokens"),
    ("ECE", "ece"),
)


def format_cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "—"
    if key in ("name", "kind", "n"):
        return str(value)
    if key == "invalid_rate":
        return f"{100 * value:.1f}%"
    if key == "mean_reasoning_tokens":
        return f"{value:.0f}"
    ci = row.get(f"{key}_ci")
    text = f"{value:.3f}"
    if ci:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def render_judge_eval_md(rows: Sequence[dict[str, Any]], *, title: str = "Judge evaluation", notes: Sequence[str] = ()) -> str:
    """The side-by-side table as Markdown (values with 95 % CIs in brackets)."""
    head = [h for h, _ in COLUMNS]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [format_cell(row, k).replace("|", "\\|") for _, k in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("α: Krippendorff's α (interval) of the judge's reward value (expected score where read "
                 "out) vs the gold score; accuracy: share of judged orders matching the gold choice; "
                 "brackets: 95 % percentile-bootstrap CI over items; — : not applicable.")
    lines.extend(["", *notes] if notes else [])
    return "\n".join(lines) + "\n"


def judge_eval_table(rows: Sequence[dict[str, Any]], *, title: str = "Judge evaluation") -> Any:
    """The side-by-side table as a ``rich.table.Table`` (the CLI prints it)."""
    from rich.table import Table

    table = Table(title=title)
    for header, key in COLUMNS:
        table.add_column(header, justify="left" if key in ("name", "kind") else "right")
    for row in rows:
        table.add_row(*(format_cell(row, k) for _, k in COLUMNS))
    return table


__all__ = [
    "ARENA_TO_PAIR",
    "COLUMNS",
    "MISSING_GROUP",
    "BootstrapSettings",
    "compute_breakdown",
    "compute_pairwise_row",
    "compute_pointwise_row",
    "format_cell",
    "judge_eval_table",
    "pairwise_item_accuracy",
    "reasoning_summary",
    "render_breakdown_md",
    "render_judge_eval_md",
    "to_pair_choice",
]
