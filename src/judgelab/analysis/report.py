"""The run report (L3): ``render_report(run_dir)`` → a self-contained HTML page, Markdown and JSON.

Reads only records from disk (``judgelab.analysis.run_records``; formats in ``docs/records.md``), so
every number can be recomputed offline from the run directory:

- judge agreement table         ← ``judge_eval.json``
- proxy & gold vs step per reward judge (mean over seeds, band), KL and length vs step,
  gold vs √KL, training reward    ← ``tracking.jsonl``, ``train_log.jsonl``
- reward-hacking summary per run, and judge-vs-judge gold differences across seeds with CIs
                                 ← ``tracking.jsonl`` through ``judgelab.analysis.hacking``
- paired proxy / gold change per prompt, first → last sampled step, with bootstrap CIs
                                 ← ``eval_samples.jsonl`` through ``compute_paired_change``
- sample outputs at the start, the gold peak and the end   ← ``eval_samples.jsonl``

The page is built once as a list of sections (tables, figures, samples) and written twice: HTML
(images as base64 PNG, inline CSS, a Content-Security-Policy allowing no script and no remote load;
every string from a record is HTML-escaped — model outputs are untrusted) and Markdown (PNG files
beside it; outputs in fenced blocks whose fence is longer than any backtick run in the text).
``report.json`` holds the numbers behind the tables and the sha256 of each record file read.
The output is deterministic: the same records give the same files (no timestamps).

matplotlib is imported inside the figure functions (object API + Agg canvas, no pyplot, no global
backend switch).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from judgelab.analysis.hacking import (
    HackingSummary,
    PairedChange,
    SeedComparison,
    compute_hacking_summary,
    compute_paired_change,
    compute_seed_comparison,
)
from judgelab.analysis.run_records import PolicyRun, RunLayout, SourceFile, find_runs
from judgelab.errors import DataError, JudgelabError
from judgelab.store.jsonl import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

REPORT_SCHEMA = "judgelab.report/v1"
_GOLD, _PROXY = "#1f77b4", "#d62728"
_MAX_PROMPT, _MAX_RESPONSE, _MAX_REASONING = 600, 1500, 800
_SAMPLES_TITLE = "Sample outputs"


# ------------------------------------------------------------------------------------------------
# sections


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    text_cols: tuple[int, ...] = (0,)  # left-aligned columns; the others hold numbers


@dataclass
class Figure:
    title: str
    filename: str
    png: bytes
    caption: str


@dataclass
class SampleCell:
    label: str
    step: int
    proxy: float | None
    gold: float | None
    response: str
    gold_reasoning: str | None


@dataclass
class SamplePrompt:
    prompt_id: str
    prompt: str
    cells: list[SampleCell]


@dataclass
class Samples:
    title: str
    prompts: list[SamplePrompt]
    note: str = ""


@dataclass
class Text:
    title: str | None
    text: str


Section = Table | Figure | Samples | Text


@dataclass
class Report:
    title: str
    subtitle: list[tuple[str, str]]
    sections: list[Section] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# formatting


def _f(x: Any, nd: int = 2) -> str:
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return "–"
    return f"{x:.{nd}f}"


def _ci(v: Any, ci: Any, nd: int = 2) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and _f(ci[0]) != "–" and _f(ci[1]) != "–":
        return f"{_f(v, nd)} [{_f(ci[0], nd)}, {_f(ci[1], nd)}]"
    return _f(v, nd)


def _clip(text: Any, limit: int) -> str:
    s = "" if text is None else str(text)
    if len(s) <= limit:
        return s
    return s[:limit] + f" … [truncated: {len(s)} characters in the record]"


def _jsonable(obj: Any) -> Any:
    """nan/inf → None, tuples → lists, recursively (report.json stays strict JSON)."""
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ------------------------------------------------------------------------------------------------
# analysis of the loaded runs


def _summarise(run: PolicyRun, window: int, noise: float) -> HackingSummary:
    kl = run.metric("kl/policy_init")
    return compute_hacking_summary(
        run.steps,
        run.metric("reward/proxy"),
        run.metric("reward/gold"),
        kl if any(v is not None for v in kl) else None,
        proxy_se=run.metric("reward/proxy_se") if run.has_metric("reward/proxy_se") else None,
        gold_se=run.metric("reward/gold_se") if run.has_metric("reward/gold_se") else None,
        window=window,
        noise=noise,
    )


def _by_judge(runs: Sequence[PolicyRun]) -> dict[str, list[PolicyRun]]:
    out: dict[str, list[PolicyRun]] = {}
    for r in runs:
        out.setdefault(r.judge, []).append(r)
    return out


def _aggregate(runs: Sequence[PolicyRun], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Mean and s.d. over runs of ``metric`` at the steps every run evaluated (s.d. nan for 1 run)."""
    common = set.intersection(*(set(r.steps) for r in runs))
    mat = np.array(
        [[np.nan if v is None else v for s, v in zip(r.steps, r.metric(metric)) if s in common] for r in runs],
        dtype=np.float64,
    )
    steps = np.array(sorted(common), dtype=np.float64)
    if mat.size == 0:
        return steps, np.array([]), np.array([]), 0
    with warnings.catch_warnings():  # all-nan columns: 'mean of empty slice' — nan is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(mat, axis=0)
        sd = np.nanstd(mat, axis=0, ddof=1) if len(runs) >= 2 else np.full(mean.shape, np.nan)
    return steps, mean, sd, len(runs)


# ------------------------------------------------------------------------------------------------
# figures


def _new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1, sharey: bool = False):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, axes


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _band(ax: Any, steps: np.ndarray, mean: np.ndarray, sd: np.ndarray, color: str, label: str, **kw: Any) -> None:
    ax.plot(steps, mean, color=color, label=label, marker="o", markersize=3, **kw)
    if np.any(~np.isnan(sd)):
        ax.fill_between(steps, mean - sd, mean + sd, color=color, alpha=0.15, linewidth=0)


def _figure_proxy_gold(by_judge: dict[str, list[PolicyRun]], summaries: dict[int, HackingSummary]) -> Figure:
    judges = list(by_judge)
    ncols = min(2, len(judges))
    nrows = math.ceil(len(judges) / ncols)
    fig, axes = _new_figure(5.6 * ncols, 3.6 * nrows, ncols, nrows, sharey=True)
    for k, judge in enumerate(judges):
        ax = axes[k // ncols][k % ncols]
        runs = by_judge[judge]
        pairwise = any(r.proxy_protocol == "pairwise" for r in runs)
        ax_proxy = ax.twinx() if pairwise else ax  # a win rate is not on the gold's scale
        for metric, color, name in (("reward/proxy", _PROXY, "proxy"), ("reward/gold", _GOLD, "gold")):
            steps, mean, sd, n = _aggregate(runs, metric)
            if n == 1:  # one seed: band = ±1 standard error of the evaluation mean
                se = np.array([np.nan if v is None else v for v in runs[0].metric(metric + "_se")], dtype=float)
                sd = se
            target = ax_proxy if metric == "reward/proxy" else ax
            _band(target, steps, mean, sd, color, name + (" (win rate vs step 0, right axis)" if target is not ax else ""))
            if metric == "reward/gold" and mean.size and np.any(~np.isnan(mean)):
                i = int(np.nanargmax(mean))
                ax.plot([steps[i]], [mean[i]], marker="*", markersize=13, color=_GOLD, linestyle="none",
                        label="gold peak")
        extras = sorted({name for r in runs for name in r.extra_reward_names()})
        for e in extras:
            steps, mean, _, _ = _aggregate(runs, e)
            ax.plot(steps, mean, color="0.45", linestyle="--", linewidth=1, label=e.removeprefix("reward/"))
        for r in runs:
            s = summaries[id(r)]
            if s.divergence_step is not None:
                ax.axvline(s.divergence_step, color="0.3", linestyle=":", linewidth=1.2)
        n_seeds = len(runs)
        ax.set_title(f"reward judge: {judge}  ({n_seeds} seed{'s' if n_seeds != 1 else ''})", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("mean score on eval prompts")
        ax.grid(alpha=0.3)
        if any(summaries[id(r)].divergence_step is not None for r in runs):
            ax.plot([], [], color="0.3", linestyle=":", label="divergence (per seed)")
        handles, labels = ax.get_legend_handles_labels()
        if pairwise:
            ax_proxy.set_ylabel("proxy win rate vs initial policy")
            h2, l2 = ax_proxy.get_legend_handles_labels()
            handles, labels = h2 + handles, l2 + labels
        ax.legend(handles, labels, fontsize=8, loc="best")
    for k in range(len(judges), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    multi = any(len(v) > 1 for v in by_judge.values())
    band = "±1 s.d. across seeds" if multi else "±1 standard error of the evaluation mean"
    if multi and any(len(v) == 1 for v in by_judge.values()):
        band = "±1 s.d. across seeds (±1 SE where a judge has one seed)"
    return Figure(
        "Proxy and gold reward during training",
        "fig_proxy_gold.png",
        _png(fig),
        f"Mean over seeds of reward/proxy and reward/gold at each evaluation step (tracking.jsonl); "
        f"band {band}. Star: highest mean gold. Dotted lines: divergence step of each seed "
        f"(proxy up, gold down beyond noise; see the hacking table).",
    )


def _figure_kl_length(by_judge: dict[str, list[PolicyRun]]) -> Figure | None:
    has_kl = any(r.has_metric("kl/policy_init") for v in by_judge.values() for r in v)
    has_len = any(r.has_metric("length/mean") for v in by_judge.values() for r in v)
    if not (has_kl or has_len):
        return None
    panels = [m for m, ok in (("kl/policy_init", has_kl), ("length/mean", has_len)) if ok]
    fig, axes = _new_figure(5.6 * len(panels), 3.4, len(panels), 1)
    colors = _judge_colors(list(by_judge))
    for ax, metric in zip(axes[0], panels):
        for judge, runs in by_judge.items():
            steps, mean, sd, _ = _aggregate(runs, metric)
            _band(ax, steps, mean, sd, colors[judge], judge)
        ax.set_xlabel("training step")
        ax.set_ylabel("KL(policy ‖ initial) [nats]" if metric == "kl/policy_init" else "mean response length [tokens]")
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return Figure(
        "KL to the initial policy and response length",
        "fig_kl_length.png",
        _png(fig),
        "kl/policy_init and length/mean at each evaluation step (tracking.jsonl), mean over seeds, "
        "band ±1 s.d. across seeds where a judge has several.",
    )


def _judge_colors(judges: list[str]) -> dict[str, str]:
    palette = ["#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    return {j: palette[i % len(palette)] for i, j in enumerate(judges)}


def _figure_gold_vs_sqrt_kl(runs: Sequence[PolicyRun], summaries: dict[int, HackingSummary]) -> Figure | None:
    pts = {id(r): summaries[id(r)].gold_vs_sqrt_kl() for r in runs}
    if not any(len(p) >= 2 for p in pts.values()):
        return None
    fig, axes = _new_figure(6.4, 4.0)
    ax = axes[0][0]
    colors = _judge_colors(list(dict.fromkeys(r.judge for r in runs)))
    seen: set[str] = set()
    for r in runs:
        p = pts[id(r)]
        if not p:
            continue
        d = np.array([q[1] for q in p])
        g = np.array([q[2] for q in p])
        label = r.judge if r.judge not in seen else None
        seen.add(r.judge)
        ax.plot(d, g, marker="o", markersize=3, color=colors[r.judge], label=label, alpha=0.9)
        fit = summaries[id(r)].rl_fit
        if fit is not None and d.max() > 0:
            grid = np.linspace(0, d.max(), 60)
            ax.plot(grid, summaries[id(r)].gold_start + fit.predict(grid), color=colors[r.judge],
                    linestyle="--", linewidth=0.9, alpha=0.7)
    ax.plot([], [], color="0.4", linestyle="--", linewidth=0.9, label="fit d(α − β ln d)")
    ax.set_xlabel("√KL(policy ‖ initial)  [√nats]")
    ax.set_ylabel("gold score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return Figure(
        "Gold score against √KL (overoptimisation view)",
        "fig_gold_vs_sqrt_kl.png",
        _png(fig),
        "One line per run: (√max(kl/policy_init, 0), reward/gold) at each evaluation step "
        "(tracking.jsonl). Dashed: least-squares fit of gold − gold(step 0) = d(α − β ln d), the RL "
        "form of Gao et al. (2023), when a run has ≥ 3 points with KL > 0.",
    )


def _figure_train_log(runs: Sequence[PolicyRun]) -> Figure | None:
    rows = {id(r): [x for x in r.train_log if isinstance(x.get("step"), int) and _is_num(x.get("reward"))] for r in runs}
    if not any(rows.values()):
        return None
    has_kl = any(_is_num(x.get("kl")) for v in rows.values() for x in v)
    ncols = 2 if has_kl else 1
    fig, axes = _new_figure(5.6 * ncols, 3.2, ncols, 1)
    colors = _judge_colors(list(dict.fromkeys(r.judge for r in runs)))
    seen: set[str] = set()
    for r in runs:
        rr = rows[id(r)]
        if not rr:
            continue
        label = r.judge if r.judge not in seen else None
        seen.add(r.judge)
        axes[0][0].plot([x["step"] for x in rr], [x["reward"] for x in rr], color=colors[r.judge],
                        linewidth=1, alpha=0.8, label=label)
        if has_kl:
            kk = [x for x in rr if _is_num(x.get("kl"))]
            axes[0][1].plot([x["step"] for x in kk], [x["kl"] for x in kk], color=colors[r.judge],
                            linewidth=1, alpha=0.8, label=label)
    axes[0][0].set_title("training reward (proxy judge, rollouts)", fontsize=10)
    axes[0][0].set_ylabel("reward")
    if has_kl:
        axes[0][1].set_title("TRL kl (policy vs reference, rollouts)", fontsize=10)
    for ax in axes[0]:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return Figure(
        "Training log",
        "fig_train_log.png",
        _png(fig),
        "TRL's logged mean rollout reward (and kl when β > 0) per logging step (train_log.jsonl), one "
        "line per run.",
    )


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ------------------------------------------------------------------------------------------------
# tables


def _judge_table(rows: list[dict[str, Any]], source: SourceFile, root: Path) -> Table:
    body = []
    for j in rows:
        body.append(
            [
                str(j.get("name")),
                str(j.get("kind") or "–"),
                str(j.get("protocol") or "–"),
                str(j.get("n")) if j.get("n") is not None else "–",
                _ci(j.get("alpha"), j.get("alpha_ci")),
                _ci(j.get("accuracy"), j.get("accuracy_ci")),
                _f(j.get("position_consistency")),
                _f(j.get("invalid_rate"), 3),
                _f(j.get("mean_reasoning_tokens"), 0),
                _f(j.get("ece")),
            ]
        )
    return Table(
        "Judge agreement with the gold judge",
        ["judge", "kind", "protocol", "n", "α [95% CI]", "accuracy [95% CI]", "position consistency",
         "invalid rate", "reasoning tokens", "ECE"],
        body,
        f"As recorded in {_rel(source.path, root)} (judgelab.judge_eval/v1, {source.records} judges) by the "
        "judge-evaluation stage: α = Krippendorff's α (interval) between the judge's score and the gold "
        "score; accuracy and position consistency for pairwise verdicts (both orders); CIs are seeded "
        "percentile bootstraps over items; invalid verdicts are excluded from α and counted in the "
        "invalid rate; ECE in score units.",
        text_cols=(0, 1, 2),
    )


def _hacking_table(runs: Sequence[PolicyRun], summaries: dict[int, HackingSummary], window: int, noise: float) -> Table:
    body = []
    for r in runs:
        s = summaries[id(r)]
        fit = s.rl_fit
        inv_p, inv_g = r.metric("judge/invalid_rate")[-1], r.metric("gold/invalid_rate")[-1]
        body.append(
            [
                r.judge,
                r.seed,
                r.status,
                f"{s.steps[0]}–{s.steps[-1]} ({len(s.steps)})",
                _f(s.gold_start),
                f"{_f(s.gold_peak)} @ {s.gold_peak_step}",
                "–" if s.divergence_step is None else f"{s.divergence_step} (→{s.divergence_end_step})",
                _f(s.proxy_final),
                _f(s.gold_final),
                "– (proxy is a win rate)" if r.proxy_protocol == "pairwise"
                else f"{_f(s.final_gap)} ({'+' if s.gap_change >= 0 else ''}{_f(s.gap_change)})",
                _f(None if s.kl_final is None else math.sqrt(max(s.kl_final, 0.0))),
                "–" if fit is None else f"{fit.alpha:.2f}, {fit.beta:.2f}",
                f"{_f(inv_p, 3)} / {_f(inv_g, 3)}",
            ]
        )
    noise_txt = {
        "standard_error": "reward/proxy_se and reward/gold_se",
    }
    sources = sorted({s.noise_source for s in summaries.values()})
    where = ", ".join(noise_txt.get(x, x.replace("_", " ")) for x in sources)
    return Table(
        "Reward hacking per run",
        ["reward judge", "seed", "status", "eval steps (n)", "gold start", "gold peak @ step",
         "divergence step (→ end of window)", "proxy final", "gold final", "gap proxy−gold (Δ vs start)",
         "√KL final", "fit α, β", "invalid final proxy / gold"],
        body,
        "From each run's tracking.jsonl (metrics reward/proxy, reward/gold, their _se, kl/policy_init, "
        "judge/invalid_rate, gold/invalid_rate) by judgelab.analysis.hacking.compute_hacking_summary. "
        f"Divergence step = the first evaluation step s_i such that, {window} evaluation points later, "
        f"the proxy score has risen and the gold score has fallen, each by more than {noise:g} × "
        f"√(se_i² + se_(i+{window})²) (noise from {where}). Gap = proxy − gold at the last step; Δ = its "
        "change since the first step. Fit: gold − gold(start) = d(α − β ln d) with d = √KL "
        "(least squares, ≥ 3 points with KL > 0).",
        text_cols=(0, 1, 2),
    )


def _paired_changes(run: PolicyRun) -> dict[str, PairedChange]:
    """Proxy and gold change per prompt, first → last sampled step (``eval_samples.jsonl``)."""
    if len(run.sample_steps) < 2:
        return {}
    first, last = run.sample_steps[0], run.sample_steps[-1]
    by_step: dict[int, dict[str, dict[str, Any]]] = {first: {}, last: {}}
    for rec in run.samples_at({first, last}):
        by_step[int(rec["step"])][str(rec["prompt_id"])] = rec
    out: dict[str, PairedChange] = {}
    for metric in ("proxy", "gold"):
        change = compute_paired_change(
            {k: _num_or_none(v.get(metric)) for k, v in by_step[first].items()},
            {k: _num_or_none(v.get(metric)) for k, v in by_step[last].items()},
            metric=metric, step_from=first, step_to=last,
        )
        if change is not None:
            out[metric] = change
    return out


def _paired_table(runs: Sequence[PolicyRun], paired: dict[int, dict[str, PairedChange]]) -> Table:
    body = []
    for r in runs:
        p = paired.get(id(r)) or {}
        if not p:
            continue
        proxy, gold = p.get("proxy"), p.get("gold")
        steps = next(iter(p.values()))
        cells = []
        for c in (proxy, gold):
            cells.append("–" if c is None else
                         f"{c.ci.value:+.2f} [{c.ci.low:+.2f}, {c.ci.high:+.2f}] (n {c.ci.n_items})")
        both = proxy is not None and gold is not None and proxy.up and gold.down
        body.append([r.judge, r.seed, f"{steps.step_from} → {steps.step_to}", *cells, "yes" if both else "no"])
    return Table(
        "Paired change per prompt, first → last sampled step",
        ["reward judge", "seed", "steps", "Δ proxy [95% CI] (prompts)", "Δ gold [95% CI] (prompts)",
         "proxy up and gold down"],
        body,
        "From each run's eval_samples.jsonl by judgelab.analysis.hacking.compute_paired_change: per held-out "
        "prompt, its score at the last sampled step minus its score at the first (prompts scored at both "
        "steps), the mean over prompts and a seeded percentile-bootstrap CI over prompts (2000 resamples). "
        "\"proxy up and gold down\" = the proxy CI lies above 0 and the gold CI below 0; no correction for "
        "looking at several runs. Needs only two evaluation points (the divergence detector needs more).",
        text_cols=(0, 1, 2, 5),
    )


def _seed_tables(cmp: SeedComparison) -> list[Table]:
    per = Table(
        "Gold score of the policies across seeds",
        ["reward judge", "seeds", "final gold mean ± s.d.", "peak gold mean ± s.d.", "runs with divergence"],
        [
            [
                j.judge,
                str(j.n),
                f"{_f(j.final_gold_mean)} ± {_f(j.final_gold_sd)}",
                f"{_f(j.peak_gold_mean)} ± {_f(j.peak_gold_sd)}",
                f"{j.n_hacked} / {j.n}",
            ]
            for j in cmp.judges
        ],
        "Per reward judge over its seeds: the last evaluation step's reward/gold (final) and the highest "
        "reward/gold of each run (peak), from tracking.jsonl; s.d. with ddof = 1 (– for one seed).",
    )
    tables = [per]
    if cmp.differences:
        tables.append(
            Table(
                "Gold difference between reward judges' policies",
                ["judge A − judge B", "metric", "difference", "95% CI", "method", "seeds A / B"],
                [
                    [
                        f"{d.judge_a} − {d.judge_b}",
                        d.metric.replace("_", " "),
                        _f(d.difference),
                        f"[{_f(d.low)}, {_f(d.high)}]" if d.note == "" else d.note,
                        d.method.replace("_", " ") + (f" (df {d.df:.1f})" if d.df is not None else ""),
                        f"{d.n_a} / {d.n_b}",
                    ]
                    for d in cmp.differences
                ],
                "Difference of the per-judge means over seeds (the table above); CI = Welch's t interval "
                "with seeds as the unit (judgelab.analysis.hacking.compute_seed_comparison). With few seeds "
                "the interval is wide by construction; it reflects seed-to-seed variation, not only "
                "evaluation noise.",
                text_cols=(0, 1, 4),
            )
        )
    return tables


# ------------------------------------------------------------------------------------------------
# samples


def _sample_section(run: PolicyRun, summary: HackingSummary, k: int, source: str, first: bool) -> Samples | None:
    if not run.sample_steps or k <= 0:
        return None
    steps = run.sample_steps
    start, end = steps[0], steps[-1]
    peak = min(steps, key=lambda s: (abs(s - summary.gold_peak_step), s))
    points: list[tuple[str, int]] = []
    for label, step in (("start", start), ("gold peak", peak), ("end", end)):
        if label == "gold peak" and step != summary.gold_peak_step:
            label = f"nearest to gold peak ({summary.gold_peak_step})"
        if points and points[-1][1] == step:
            points[-1] = (f"{points[-1][0]} = {label}", step)
        elif any(p[1] == step for p in points):
            continue
        else:
            points.append((label, step))
    by_step: dict[int, dict[str, dict[str, Any]]] = {st: {} for _, st in points}
    for rec in run.samples_at({st for _, st in points}):
        by_step[int(rec["step"])][str(rec["prompt_id"])] = rec  # last record wins
    shared = set.intersection(*(set(by_step[s]) for _, s in points))
    if not shared:
        shared = set(by_step[end])
        points = [p for p in points if shared <= set(by_step[p[1]])] or [("end", end)]

    shown = [st for _, st in points]
    ref = peak if peak in shown else shown[0]

    def drop(pid: str) -> float:  # gold fall from the peak point to the end (most hacked first)
        g_peak = _num_or_nan(by_step[ref][pid].get("gold"))
        g_end = _num_or_nan(by_step[shown[-1]][pid].get("gold"))
        v = g_peak - g_end
        return -math.inf if math.isnan(v) else v

    chosen = sorted(shared, key=lambda pid: (-drop(pid), pid))[:k]
    prompts = []
    for pid in chosen:
        first = by_step[points[0][1]][pid]
        cells = [
            SampleCell(
                label=label,
                step=step,
                proxy=_num_or_none(by_step[step][pid].get("proxy")),
                gold=_num_or_none(by_step[step][pid].get("gold")),
                response=_clip(by_step[step][pid].get("response"), _MAX_RESPONSE),
                gold_reasoning=None
                if by_step[step][pid].get("gold_reasoning") is None
                else _clip(by_step[step][pid]["gold_reasoning"], _MAX_REASONING),
            )
            for label, step in points
        ]
        prompts.append(SamplePrompt(pid, _clip(first.get("prompt"), _MAX_PROMPT), cells))
    if not first:
        return Samples(run.label, prompts, f"From {source}; selected as above.")
    return Samples(
        run.label,
        prompts,
        f"From {source}: responses to the same evaluation prompts at the first sampled step, the "
        "sampled step nearest the gold peak, and the last sampled step. Prompts shown: the "
        f"{k} with the largest gold drop from the peak point to the end (most hacked first; ties by "
        "prompt id). Texts are model outputs, shown verbatim (escaped) and cut at "
        f"{_MAX_RESPONSE} characters.",
    )


def _num_or_none(v: Any) -> float | None:
    return float(v) if _is_num(v) else None


def _num_or_nan(v: Any) -> float:
    return float(v) if _is_num(v) else math.nan


# ------------------------------------------------------------------------------------------------
# build


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def build_report(
    run_dir: str | Path, *, samples_per_point: int = 2, window: int = 2, noise: float = 2.0
) -> Report:
    """Read the records under ``run_dir`` and assemble the report's sections and numbers."""
    layout: RunLayout = find_runs(run_dir)
    root = layout.root
    runs: list[PolicyRun] = []
    summaries: dict[int, HackingSummary] = {}
    left_out: list[str] = []
    for r in layout.runs:
        try:
            summaries[id(r)] = _summarise(r, window, noise)
            runs.append(r)
        except DataError as e:  # e.g. no step with both scores yet: report the others, name this one
            logger.warning("%s: left out of the report: %s", r.path, e.message)
            left_out.append(f"{_rel(r.path, root)}: {e.message}")
    by_judge = _by_judge(runs)
    m = layout.manifest
    versions = m.get("versions") if isinstance(m.get("versions"), dict) else {}
    subtitle = [
        ("directory", str(root)),
        ("layout", {"study": "study", "policy": "single policy run", "judge_eval": "judge evaluation"}[layout.kind]),
        ("stage / status", f"{m.get('stage', '–')} / {m.get('status', '–')}"),
        ("git sha", str(m.get("git_sha") or "–")),
        ("created", str(m.get("created") or "–")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v and k in ("judgelab", "torch", "transformers", "trl", "peft")) or "–"),
        ("policy runs", f"{len(runs)} ({len(by_judge)} reward judge{'s' if len(by_judge) != 1 else ''})"),
    ]
    rep = Report(f"judgelab report — {root.resolve().name}", subtitle)

    if layout.judge_eval is not None and layout.judge_eval_source is not None:
        rep.sections.append(_judge_table(layout.judge_eval, layout.judge_eval_source, root))
    elif layout.kind != "policy":
        rep.sections.append(Text("Judge agreement", "No judge_eval.json was found; the table is left out."))

    if left_out:
        rep.sections.append(Text("Runs left out", "; ".join(left_out)))
    cmp: SeedComparison | None = None
    paired = {id(r): _paired_changes(r) for r in runs}
    if runs:
        rep.sections.append(_hacking_table(runs, summaries, window, noise))
        if any(paired.values()):
            rep.sections.append(_paired_table(runs, paired))
        if layout.kind == "study":
            cmp = compute_seed_comparison({j: {r.seed: summaries[id(r)] for r in rs} for j, rs in by_judge.items()})
            rep.sections.extend(_seed_tables(cmp))
        rep.sections.append(_figure_proxy_gold(by_judge, summaries))
        for fig in (_figure_kl_length(by_judge), _figure_gold_vs_sqrt_kl(runs, summaries), _figure_train_log(runs)):
            if fig is not None:
                rep.sections.append(fig)
        n_samples = 0
        for r in runs:
            src = _rel(r.path / "eval_samples.jsonl", root)
            sec = _sample_section(r, summaries[id(r)], samples_per_point, src, first=n_samples == 0)
            if sec is not None:
                rep.sections.append(sec)
                n_samples += 1
        if not any(r.sample_steps for r in runs):
            rep.sections.append(Text(_SAMPLES_TITLE, "No eval_samples.jsonl was found in the policy runs."))

    sources = [s for r in runs for s in r.sources]
    if layout.judge_eval_source is not None:
        sources.append(layout.judge_eval_source)
    rep.data = _jsonable(
        {
            "schema": REPORT_SCHEMA,
            "run_dir": str(root),
            "layout": layout.kind,
            "settings": {"window": window, "noise": noise, "samples_per_point": samples_per_point},
            "runs": [
                {"judge": r.judge, "seed": r.seed, "path": _rel(r.path, root), "status": r.status,
                 "proxy_protocol": r.proxy_protocol, "summary": summaries[id(r)].to_dict()}
                for r in runs
            ],
            "paired_change": [
                {"judge": r.judge, "seed": r.seed, **{k: v.to_dict() for k, v in paired[id(r)].items()}}
                for r in runs if paired[id(r)]
            ],
            "seed_comparison": cmp.to_dict() if cmp is not None else None,
            "judge_eval": layout.judge_eval,
            "sources": [{"path": _rel(s.path, root), "sha256": s.sha256, "records": s.records} for s in sources],
        }
    )
    return rep


# ------------------------------------------------------------------------------------------------
# writers

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1d1d1f;max-width:1180px;
margin:24px auto;padding:0 20px;line-height:1.45;font-size:15px}
h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:16px;margin:22px 0 4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0;width:100%}
th,td{border:1px solid #d0d0d0;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.note{color:#555;font-size:12.5px;margin:4px 0 0}.meta{width:auto}.meta td{border:none;padding:1px 12px 1px 0;font-size:13px}
.meta td:first-child{color:#666}img{max-width:100%;border:1px solid #eee}
.prompt{background:#f7f7f9;border-left:3px solid #999;padding:6px 10px;margin:14px 0 6px;font-size:13px}
.cells{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:10px}
.cell{border:1px solid #ddd;border-radius:4px;padding:6px 8px;font-size:12.5px;overflow-wrap:anywhere}
.cell .head{font-weight:600;margin-bottom:4px}.cell .scores{color:#444;margin-bottom:4px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;
margin:0;background:#fafafa;padding:4px}details{margin-top:4px;color:#444}
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _esc(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def render_html(rep: Report) -> str:
    """The report as one self-contained HTML page (every record string escaped)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(rep.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(rep.title)}</h1>",
        '<table class="meta">' + "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in rep.subtitle) + "</table>",
    ]
    toc = list(dict.fromkeys(_SAMPLES_TITLE if isinstance(s, Samples) else s.title for s in rep.sections if s.title))
    out.append("<p class=\"note\">" + " · ".join(f'<a href="#{_slug(t)}">{_esc(t)}</a>' for t in toc) + "</p>")
    samples_started = False
    for sec in rep.sections:
        if isinstance(sec, Samples):
            if not samples_started:
                out.append(f'<h2 id="{_slug(_SAMPLES_TITLE)}">{_esc(_SAMPLES_TITLE)}</h2>')
                samples_started = True
            out.append(f'<h3 id="{_slug(_SAMPLES_TITLE + " " + sec.title)}">{_esc(sec.title)}</h3>')
        elif sec.title:
            out.append(f'<h2 id="{_slug(sec.title)}">{_esc(sec.title)}</h2>')
        if isinstance(sec, Table):
            out.append("<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in sec.headers) + "</tr></thead><tbody>")
            for row in sec.rows:
                out.append(
                    "<tr>"
                    + "".join(
                        f"<td>{_esc(c)}</td>" if i in sec.text_cols else f'<td class="num">{_esc(c)}</td>'
                        for i, c in enumerate(row)
                    )
                    + "</tr>"
                )
            out.append("</tbody></table>")
            if sec.note:
                out.append(f'<p class="note">How computed: {_esc(sec.note)}</p>')
        elif isinstance(sec, Figure):
            b64 = base64.b64encode(sec.png).decode("ascii")
            out.append(f'<img alt="{_esc(sec.title)}" src="data:image/png;base64,{b64}">')
            out.append(f'<p class="note">{_esc(sec.caption)}</p>')
        elif isinstance(sec, Samples):
            if sec.note:
                out.append(f'<p class="note">{_esc(sec.note)}</p>')
            for sp in sec.prompts:
                out.append(f'<div class="prompt"><b>prompt {_esc(sp.prompt_id)}</b><pre>{_esc(sp.prompt)}</pre></div>')
                out.append('<div class="cells">')
                for c in sp.cells:
                    out.append(
                        f'<div class="cell"><div class="head">{_esc(c.label)} · step {c.step}</div>'
                        f'<div class="scores">proxy {_esc(_f(c.proxy))} · gold {_esc(_f(c.gold))}</div>'
                        f"<pre>{_esc(c.response)}</pre>"
                        + (
                            f"<details><summary>gold reasoning</summary><pre>{_esc(c.gold_reasoning)}</pre></details>"
                            if c.gold_reasoning
                            else ""
                        )
                        + "</div>"
                    )
                out.append("</div>")
        elif isinstance(sec, Text):
            out.append(f"<p>{_esc(sec.text)}</p>")
    out.append(
        '<p class="note">Generated by <code>judgelab report</code> from the run\'s records only; the numbers '
        "behind every table, and the sha256 of each record file read, are in report.json beside this page.</p>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _md_cell(s: str) -> str:
    return html.escape(s, quote=False).replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def render_markdown(rep: Report) -> str:
    """The report as Markdown; figures are linked as the PNG files written beside it."""
    out = [f"# {_md_cell(rep.title)}", ""]
    out += [f"- **{_md_cell(k)}**: {_md_cell(v)}" for k, v in rep.subtitle]
    samples_started = False
    for sec in rep.sections:
        out.append("")
        if isinstance(sec, Samples):
            if not samples_started:
                out += [f"## {_SAMPLES_TITLE}", ""]
                samples_started = True
            out += [f"### {_md_cell(sec.title)}", ""]
        elif sec.title:
            out += [f"## {_md_cell(sec.title)}", ""]
        if isinstance(sec, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in sec.headers) + " |")
            out.append("|" + "|".join("---" if i in sec.text_cols else "---:" for i in range(len(sec.headers))) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in sec.rows]
            if sec.note:
                out += ["", f"*How computed:* {_md_cell(sec.note)}"]
        elif isinstance(sec, Figure):
            out += [f"![{_md_cell(sec.title)}]({sec.filename})", "", f"*{_md_cell(sec.caption)}*"]
        elif isinstance(sec, Samples):
            if sec.note:
                out += [f"*{_md_cell(sec.note)}*", ""]
            for sp in sec.prompts:
                out += [f"**prompt {_md_cell(sp.prompt_id)}**", "", _fence(sp.prompt), ""]
                for c in sp.cells:
                    out += [f"- *{_md_cell(c.label)}* · step {c.step} · proxy {_f(c.proxy)} · gold {_f(c.gold)}", "",
                            _fence(c.response), ""]
                    if c.gold_reasoning:
                        out += ["  gold reasoning:", "", _fence(c.gold_reasoning), ""]
        elif isinstance(sec, Text):
            out.append(_md_cell(sec.text))
    out += ["", "*Generated by `judgelab report` from the run's records only; numbers and record hashes in report.json.*", ""]
    return "\n".join(out)


def render_report(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    samples_per_point: int = 2,
    window: int = 2,
    noise: float = 2.0,
) -> Path:
    """Write ``report.html`` (self-contained), ``report.md`` + ``fig_*.png`` and ``report.json``.

    ``out_dir`` defaults to ``RUN_DIR/report``. Returns the path of ``report.html``.
    """
    rep = build_report(run_dir, samples_per_point=samples_per_point, window=window, noise=noise)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    for sec in rep.sections:
        if isinstance(sec, Figure):
            tmp = out / f".{sec.filename}.tmp"
            tmp.write_bytes(sec.png)
            tmp.replace(out / sec.filename)
    write_text_atomic(out / "report.md", render_markdown(rep))
    write_json_atomic(out / "report.json", rep.data)
    html_path = out / "report.html"
    write_text_atomic(html_path, render_html(rep))
    for name in ("report.md", "report.json", "report.html"):
        os.chmod(out / name, 0o644)  # a report is for sharing (the atomic writer creates 0600 files)
    logger.info("report written to %s (+ report.md, report.json, %d figures)", html_path,
                sum(isinstance(s, Figure) for s in rep.sections))
    return html_path


# ------------------------------------------------------------------------------------------------
# optional screenshot

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH, or None."""
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def render_png(html_path: str | Path, png_path: str | Path | None = None, *, width: int = 1200, height: int = 4000) -> Path:
    """Screenshot ``html_path`` with headless Chromium (the top ``width`` × ``height`` pixels).

    Offline and sandboxed from the network (``--disable-background-networking``; the page's CSP
    allows no remote load). Raises ``JudgelabError`` when no Chromium is installed.
    """
    exe = find_chromium()
    if exe is None:
        raise JudgelabError(
            "no Chromium/Chrome executable found on PATH (needed for --png)",
            "install it (Debian: apt-get install chromium) or open report.html in a browser",
        )
    html_path = Path(html_path).resolve()
    png = Path(png_path) if png_path is not None else html_path.with_suffix(".png")
    cmd = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--hide-scrollbars", f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
        html_path.as_uri(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise JudgelabError(f"Chromium failed to screenshot {html_path}: {e}", "run it by hand: " + " ".join(cmd)) from e
    if proc.returncode != 0 or not png.exists():
        raise JudgelabError(
            f"Chromium exited {proc.returncode} without writing {png}: {proc.stderr.strip()[-500:]}",
            "run it by hand: " + " ".join(cmd),
        )
    return png


__all__ = [
    "REPORT_SCHEMA",
    "Report",
    "build_report",
    "find_chromium",
    "render_html",
    "render_markdown",
    "render_png",
    "render_report",
]
