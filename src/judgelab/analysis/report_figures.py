"""The report's figures (L3): matplotlib object API + Agg canvas (no pyplot, no global backend
switch), imported inside ``new_figure`` so building tables alone never loads matplotlib.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from judgelab.analysis.hacking import HackingSummary
from judgelab.analysis.report_model import Figure, is_num
from judgelab.analysis.run_records import PolicyRun

GOLD_COLOR, PROXY_COLOR = "#1f77b4", "#d62728"


def group_by_judge(runs: Sequence[PolicyRun]) -> dict[str, list[PolicyRun]]:
    out: dict[str, list[PolicyRun]] = {}
    for r in runs:
        out.setdefault(r.judge, []).append(r)
    return out


MetricOf = str | Callable[[PolicyRun], list[float | None]]


def values_of(run: PolicyRun, metric: MetricOf) -> list[float | None]:
    return run.metric(metric) if isinstance(metric, str) else metric(run)


def compared_gold(run: PolicyRun) -> list[float | None]:
    """The gold on the prompts the proxy scored (``PolicyRun.compared_gold``), per step."""
    return run.compared_gold().values


def compared_gold_se(run: PolicyRun) -> list[float | None]:
    return run.compared_gold().se


def aggregate(runs: Sequence[PolicyRun], metric: MetricOf) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Mean and s.d. over runs of ``metric`` (a tracking metric name, or a per-run function) at the
    steps every run evaluated (s.d. nan for 1 run)."""
    common = set.intersection(*(set(r.steps) for r in runs))
    mat = np.array(
        [[np.nan if v is None else v for s, v in zip(r.steps, values_of(r, metric)) if s in common] for r in runs],
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


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1, sharey: bool = False):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, axes


def png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def plot_band(ax: Any, steps: np.ndarray, mean: np.ndarray, sd: np.ndarray, color: str, label: str, **kw: Any) -> None:
    ax.plot(steps, mean, color=color, label=label, marker="o", markersize=3, **kw)
    if np.any(~np.isnan(sd)):
        ax.fill_between(steps, mean - sd, mean + sd, color=color, alpha=0.15, linewidth=0)


def figure_proxy_gold(by_judge: dict[str, list[PolicyRun]], summaries: dict[int, HackingSummary]) -> Figure:
    judges = list(by_judge)
    ncols = min(2, len(judges))
    nrows = math.ceil(len(judges) / ncols)
    fig, axes = new_figure(5.6 * ncols, 3.6 * nrows, ncols, nrows, sharey=True)
    for k, judge in enumerate(judges):
        ax = axes[k // ncols][k % ncols]
        runs = by_judge[judge]
        pairwise = any(r.proxy_protocol == "pairwise" for r in runs)
        ax_proxy = ax.twinx() if pairwise else ax  # a win rate is not on the gold's scale
        comparisons = {r.compared_gold().comparison for r in runs}
        subset = comparisons != {"same_prompts"}
        curves: list[tuple[MetricOf, MetricOf, str, str, dict[str, Any]]] = [
            ("reward/proxy", "reward/proxy_se", PROXY_COLOR, "proxy", {})]
        if subset and "unavailable" not in comparisons:
            curves.append((compared_gold, compared_gold_se, GOLD_COLOR, "gold on the proxy's prompts", {}))
        curves.append(("reward/gold", "reward/gold_se", GOLD_COLOR, "gold (all prompts)" if subset else "gold",
                       {"linestyle": "--", "linewidth": 1.0} if subset else {}))
        for metric, se_metric, color, name, style in curves:
            steps, mean, sd, n = aggregate(runs, metric)
            if n == 1:  # one seed: band = ±1 standard error of the evaluation mean
                se = np.array([np.nan if v is None else v for v in values_of(runs[0], se_metric)], dtype=float)
                sd = se
            target = ax_proxy if metric == "reward/proxy" else ax
            plot_band(target, steps, mean, sd, color, name + (" (win rate vs step 0, right axis)" if target is not ax else ""),
                      **style)
            if metric == "reward/gold" and mean.size and np.any(~np.isnan(mean)):
                i = int(np.nanargmax(mean))
                ax.plot([steps[i]], [mean[i]], marker="*", markersize=13, color=GOLD_COLOR, linestyle="none",
                        label="gold peak")
        extras = sorted({name for r in runs for name in r.extra_reward_names()})
        for e in extras:
            steps, mean, _, _ = aggregate(runs, e)
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
        png_bytes(fig),
        f"Mean over seeds of reward/proxy and reward/gold at each evaluation step (tracking.jsonl); "
        f"band {band}. Where the proxy scored only the first N held-out prompts, the solid gold line is "
        f"the gold on those N (reward/gold@proxy_prompts: the one to compare the proxy with) and the "
        f"dashed line the gold on all prompts. Star: highest mean gold (all prompts). Dotted lines: "
        f"divergence step of each seed (proxy up, gold down beyond noise; see the hacking table).",
    )


def figure_kl_length(by_judge: dict[str, list[PolicyRun]]) -> Figure | None:
    has_kl = any(r.has_metric("kl/policy_init") for v in by_judge.values() for r in v)
    has_len = any(r.has_metric("length/mean") for v in by_judge.values() for r in v)
    if not (has_kl or has_len):
        return None
    panels = [m for m, ok in (("kl/policy_init", has_kl), ("length/mean", has_len)) if ok]
    fig, axes = new_figure(5.6 * len(panels), 3.4, len(panels), 1)
    colors = judge_colors(list(by_judge))
    for ax, metric in zip(axes[0], panels):
        for judge, runs in by_judge.items():
            steps, mean, sd, _ = aggregate(runs, metric)
            plot_band(ax, steps, mean, sd, colors[judge], judge)
        ax.set_xlabel("training step")
        ax.set_ylabel("KL(policy ‖ initial) [nats]" if metric == "kl/policy_init" else "mean response length [tokens]")
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return Figure(
        "KL to the initial policy and response length",
        "fig_kl_length.png",
        png_bytes(fig),
        "kl/policy_init and length/mean at each evaluation step (tracking.jsonl), mean over seeds, "
        "band ±1 s.d. across seeds where a judge has several.",
    )


def judge_colors(judges: list[str]) -> dict[str, str]:
    palette = ["#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    return {j: palette[i % len(palette)] for i, j in enumerate(judges)}


def figure_gold_vs_sqrt_kl(runs: Sequence[PolicyRun], summaries: dict[int, HackingSummary]) -> Figure | None:
    pts = {id(r): summaries[id(r)].gold_vs_sqrt_kl() for r in runs}
    if not any(len(p) >= 2 for p in pts.values()):
        return None
    fig, axes = new_figure(6.4, 4.0)
    ax = axes[0][0]
    colors = judge_colors(list(dict.fromkeys(r.judge for r in runs)))
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
        png_bytes(fig),
        "One line per run: (√max(kl/policy_init, 0), reward/gold) at each evaluation step "
        "(tracking.jsonl). Dashed: least-squares fit of gold − gold(step 0) = d(α − β ln d), the RL "
        "form of Gao et al. (2023), when a run has ≥ 3 points with KL > 0.",
    )


def figure_train_log(runs: Sequence[PolicyRun]) -> Figure | None:
    rows = {id(r): [x for x in r.train_log if isinstance(x.get("step"), int) and is_num(x.get("reward"))] for r in runs}
    if not any(rows.values()):
        return None
    has_kl = any(is_num(x.get("kl")) for v in rows.values() for x in v)
    ncols = 2 if has_kl else 1
    fig, axes = new_figure(5.6 * ncols, 3.2, ncols, 1)
    colors = judge_colors(list(dict.fromkeys(r.judge for r in runs)))
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
            kk = [x for x in rr if is_num(x.get("kl"))]
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
        png_bytes(fig),
        "TRL's logged mean rollout reward (and kl when β > 0) per logging step (train_log.jsonl), one "
        "line per run.",
    )
