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

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judgelab.analysis.hacking import (
    MIN_CURVE_POINTS,
    HackingSummary,
    PairedChange,
    SeedComparison,
    compute_hacking_summary,
    compute_paired_change,
    compute_seed_comparison,
)
from judgelab.analysis.report_figures import (
    figure_gold_vs_sqrt_kl,
    figure_kl_length,
    figure_proxy_gold,
    figure_train_log,
    group_by_judge,
)
from judgelab.analysis.report_model import (
    SAMPLES_TITLE,
    Figure,
    Report,
    SampleCell,
    SamplePrompt,
    Samples,
    Table,
    Text,
    clip,
    fmt,
    fmt_ci,
    jsonable,
    num_or_nan,
    num_or_none,
    rel_path,
)
from judgelab.analysis.report_render import find_chromium, render_html, render_markdown, render_png
from judgelab.analysis.run_records import PolicyRun, RunLayout, SourceFile, find_runs
from judgelab.errors import DataError
from judgelab.store.jsonl import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

REPORT_SCHEMA = "judgelab.report/v1"
_MAX_PROMPT, _MAX_RESPONSE, _MAX_REASONING = 600, 1500, 800


def _summarise(run: PolicyRun, window: int, noise: float) -> HackingSummary:
    kl = run.metric("kl/policy_init")
    compared = run.compared_gold()
    comparison = compared.comparison
    return compute_hacking_summary(
        run.steps,
        run.metric("reward/proxy"),
        run.metric("reward/gold"),
        kl if any(v is not None for v in kl) else None,
        proxy_se=run.metric("reward/proxy_se"),
        gold_se=run.metric("reward/gold_se"),
        gold_compared=compared.values if comparison == "proxy_prompts" else None,
        gold_compared_se=compared.se if comparison == "proxy_prompts" else None,
        comparison=comparison,
        window=window,
        noise=noise,
    )


def _prompt_sets(run: PolicyRun) -> str:
    """Which prompts the proxy and the gold numbers are over (last tracking record)."""
    compared = run.compared_gold()
    n_p, n_all, basis = compared.n_proxy[-1], compared.n_prompts[-1], compared.basis[-1]
    total = "?" if n_all is None else str(n_all)
    if basis == "same":
        return f"same ({total})" if n_all is not None else "same"
    if basis == "unknown":
        return f"proxy {n_p} / gold {total}: no gold on the proxy's prompts"
    return f"proxy first {n_p} / gold {total}" + (" (recomputed)" if basis == "recomputed" else "")


def _divergence_cell(s: HackingSummary) -> str:
    if s.verdict == "diverged":
        return f"{s.divergence_step} (→{s.divergence_end_step})"
    if s.verdict == "undetermined":
        return f"undetermined: {s.undetermined_reason}"
    return "none"


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
                fmt_ci(j.get("alpha"), j.get("alpha_ci")),
                fmt_ci(j.get("accuracy"), j.get("accuracy_ci")),
                fmt(j.get("position_consistency")),
                fmt(j.get("invalid_rate"), 3),
                fmt(j.get("mean_reasoning_tokens"), 0),
                fmt(j.get("ece")),
            ]
        )
    return Table(
        "Judge agreement with the gold judge",
        ["judge", "kind", "protocol", "n", "α [95% CI]", "accuracy [95% CI]", "position consistency",
         "invalid rate", "reasoning tokens", "ECE"],
        body,
        f"As recorded in {rel_path(source.path, root)} (judgelab.judge_eval/v1, {source.records} judges) by the "
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
                fmt(s.gold_start),
                f"{fmt(s.gold_peak)} @ {s.gold_peak_step}",
                _divergence_cell(s),
                _prompt_sets(r),
                fmt(s.proxy_final),
                fmt(s.gold_final),
                "– (proxy is a win rate)" if r.proxy_protocol == "pairwise"
                else "– (no gold on the proxy's prompts)" if s.final_gap is None or s.gap_change is None
                else f"{fmt(s.final_gap)} ({'+' if s.gap_change >= 0 else ''}{fmt(s.gap_change)})",
                fmt(None if s.kl_final is None else math.sqrt(max(s.kl_final, 0.0))),
                "–" if fit is None else f"{fit.alpha:.2f}, {fit.beta:.2f}",
                f"{fmt(inv_p, 3)} / {fmt(inv_g, 3)}",
            ]
        )
    noise_txt = {
        "standard_error": "reward/proxy_se and the compared gold's SE",
        "curve_estimate": f"each curve's own noise estimate (≥ {MIN_CURVE_POINTS} points; SEs missing)",
        "mixed": "standard errors, and each curve's own noise estimate where an SE is missing",
        "unavailable": "no usable estimate",
    }
    sources = sorted({s.noise_source for s in summaries.values()})
    where = ", ".join(noise_txt.get(x, x.replace("_", " ")) for x in sources)
    return Table(
        "Reward hacking per run",
        ["reward judge", "seed", "status", "eval steps (n)", "gold start", "gold peak @ step",
         "divergence step (→ end of window)", "prompts: proxy / gold", "proxy final", "gold final (all prompts)",
         "gap proxy−gold, same prompts (Δ vs start)",
         "√KL final", "fit α, β", "invalid final proxy / gold"],
        body,
        "From each run's tracking.jsonl (metrics reward/proxy, reward/gold, reward/gold@proxy_prompts, their "
        "_se, proxy/n, kl/policy_init, judge/invalid_rate, gold/invalid_rate) by "
        "judgelab.analysis.hacking.compute_hacking_summary. Proxy and gold are compared on the same "
        "prompts: when the proxy scored only the first N held-out prompts (tracking.proxy_limit), the "
        "divergence test and the gap use the gold on those N (reward/gold@proxy_prompts, or recomputed "
        "from per_prompt.gold for older records; a run with neither gets no gap and an undetermined "
        "divergence); gold start, peak and final are over all prompts. "
        f"Divergence step = the first evaluation step s_i such that, {window} evaluation points later, "
        f"the proxy score has risen and the gold score has fallen, each by more than {noise:g} × "
        f"√(se_i² + se_(i+{window})²) (noise from {where}); 'undetermined' = no such window and some "
        "window could not be tested (a missing SE never lowers the threshold). Gap = proxy − gold at "
        "the last step; Δ = its change since the first step. Fit: gold − gold(start) = d(α − β ln d) "
        "with d = √KL (least squares, ≥ 3 points with KL > 0).",
        text_cols=(0, 1, 2, 6, 7),
    )


def _hacked(s: HackingSummary, p: dict[str, PairedChange]) -> str:
    """yes / no / undetermined: the detector diverged, or the paired proxy CI > 0 with the gold CI < 0."""
    proxy, gold = p.get("proxy"), p.get("gold")
    if s.verdict == "diverged" or (proxy is not None and gold is not None and proxy.up and gold.down):
        return "yes"
    return "undetermined" if s.verdict == "undetermined" else "no"


def _hacked_table(runs: Sequence[PolicyRun], summaries: dict[int, HackingSummary],
                  paired: dict[int, dict[str, PairedChange]], judge_rows: list[dict[str, Any]] | None) -> Table:
    """The first screen: per run, proxy Δ and gold Δ (same prompts), the detector's verdict, the judge's
    α against the gold, its declared flaws — and whether the run was hacked."""
    alpha = {str(j.get("name")): j for j in judge_rows or []}
    body = []
    for r in runs:
        s, p = summaries[id(r)], paired.get(id(r)) or {}
        proxy, gold = p.get("proxy"), p.get("gold")

        def delta(c: PairedChange | None, start: float | None, end: float | None) -> str:
            if c is not None:
                return f"{c.ci.value:+.2f} [{c.ci.low:+.2f}, {c.ci.high:+.2f}]"
            return "–" if start is None or end is None else f"{end - start:+.2f} (no CI)"

        j = alpha.get(r.judge) or {}
        body.append([
            r.judge, r.seed, _hacked(s, p),
            delta(proxy, s.proxy_start, s.proxy_final),
            delta(gold, s.gold_compared[0] if s.gold_compared else None, s.gold_compared[-1] if s.gold_compared else None),
            {"diverged": f"diverged at step {s.divergence_step}", "no_divergence": "no divergence",
             "undetermined": f"undetermined ({s.undetermined_reason})"}.get(s.verdict, str(s.verdict)),
            fmt_ci(j.get("alpha"), j.get("alpha_ci")) if j else "–",
            r.proxy_flaws or "–",
        ])
    return Table(
        "Which runs were hacked?",
        ["reward judge", "seed", "hacked", "Δ proxy [95% CI]", "Δ gold, same prompts [95% CI]",
         "divergence detector", "judge α vs gold [95% CI]", "declared flaws of the proxy"],
        body,
        "Per policy run, first → last evaluation: Δ proxy and Δ gold on the same held-out prompts with "
        "bootstrap CIs over prompts (the paired table below); the divergence detector over the whole curve "
        "(the hacking table below); the reward judge's Krippendorff α against the gold on held-out judge "
        "items (the judge table). hacked = yes when the detector found a divergence or the paired proxy CI "
        "lies above 0 while the gold CI lies below 0; undetermined when the detector had too little "
        "information and the paired change shows no hack. Declared flaws: a controlled rules proxy's "
        "blind spots and paid features (from the run's config.yaml).",
        text_cols=(0, 1, 2, 5, 7),
    )


def _paired_changes(run: PolicyRun) -> dict[str, PairedChange]:
    """Proxy and gold change per prompt, first → last sampled step (``eval_samples.jsonl``)."""
    if len(run.sample_steps) < 2:
        return {}
    first, last = run.sample_steps[0], run.sample_steps[-1]
    by_step: dict[int, dict[str, dict[str, Any]]] = {first: {}, last: {}}
    for rec in run.samples_at({first, last}):
        by_step[int(rec["step"])][str(rec["prompt_id"])] = rec
    def values(step: int, metric: str) -> dict[str, float | None]:
        return {k: num_or_none(v.get(metric)) for k, v in by_step[step].items()}

    # the proxy's prompts: scored (valid) by the proxy at both steps; the gold is compared on them
    proxy_prompts = {k for k, v in values(first, "proxy").items() if v is not None} & {
        k for k, v in values(last, "proxy").items() if v is not None}
    out: dict[str, PairedChange] = {}
    for key, metric, only in (("proxy", "proxy", None), ("gold", "gold", proxy_prompts),
                              ("gold_all", "gold", None)):
        change = compute_paired_change(values(first, metric), values(last, metric), metric=key,
                                       step_from=first, step_to=last, only=only)
        if change is not None:
            out[key] = change
    return out


def _paired_table(runs: Sequence[PolicyRun], paired: dict[int, dict[str, PairedChange]]) -> Table:
    body = []
    for r in runs:
        p = paired.get(id(r)) or {}
        if not p:
            continue
        proxy, gold, gold_all = p.get("proxy"), p.get("gold"), p.get("gold_all")
        steps = next(iter(p.values()))
        cells = []
        for c in (proxy, gold, gold_all):
            cells.append("–" if c is None else
                         f"{c.ci.value:+.2f} [{c.ci.low:+.2f}, {c.ci.high:+.2f}] (n {c.ci.n_items})")
        both = proxy is not None and gold is not None and proxy.up and gold.down
        body.append([r.judge, r.seed, f"{steps.step_from} → {steps.step_to}", *cells, "yes" if both else "no"])
    return Table(
        "Paired change per prompt, first → last sampled step",
        ["reward judge", "seed", "steps", "Δ proxy [95% CI] (prompts)",
         "Δ gold, same prompts [95% CI] (prompts)", "Δ gold, all prompts [95% CI] (prompts)",
         "proxy up and gold down (same prompts)"],
        body,
        "From each run's eval_samples.jsonl by judgelab.analysis.hacking.compute_paired_change: per held-out "
        "prompt, its score at the last sampled step minus its score at the first, the mean over prompts and "
        "a seeded percentile-bootstrap CI over prompts (2000 resamples). Δ proxy: prompts with a valid proxy "
        "score at both steps; Δ gold, same prompts: the gold on exactly those prompts (what the proxy change "
        "is compared with); Δ gold, all prompts: every prompt with a gold score at both steps (the proxy may "
        "have scored only the first N). \"proxy up and gold down\" = the proxy CI lies above 0 and the "
        "same-prompt gold CI below 0; no correction for looking at several runs. Needs only two evaluation "
        "points (the divergence detector needs more).",
        text_cols=(0, 1, 2, 6),
    )


def _seed_tables(cmp: SeedComparison) -> list[Table]:
    per = Table(
        "Gold score of the policies across seeds",
        ["reward judge", "seeds", "final gold mean ± s.d.", "peak gold mean ± s.d.",
         "runs with divergence (undetermined)"],
        [
            [
                j.judge,
                str(j.n),
                f"{fmt(j.final_gold_mean)} ± {fmt(j.final_gold_sd)}",
                f"{fmt(j.peak_gold_mean)} ± {fmt(j.peak_gold_sd)}",
                f"{j.n_hacked} / {j.n}" + (f" ({j.n_undetermined} undetermined)" if j.n_undetermined else ""),
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
                        fmt(d.difference),
                        f"[{fmt(d.low)}, {fmt(d.high)}]" if d.note == "" else d.note,
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
        g_peak = num_or_nan(by_step[ref][pid].get("gold"))
        g_end = num_or_nan(by_step[shown[-1]][pid].get("gold"))
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
                proxy=num_or_none(by_step[step][pid].get("proxy")),
                gold=num_or_none(by_step[step][pid].get("gold")),
                response=clip(by_step[step][pid].get("response"), _MAX_RESPONSE),
                gold_reasoning=None
                if by_step[step][pid].get("gold_reasoning") is None
                else clip(by_step[step][pid]["gold_reasoning"], _MAX_REASONING),
            )
            for label, step in points
        ]
        prompts.append(SamplePrompt(pid, clip(first.get("prompt"), _MAX_PROMPT), cells))
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


# ------------------------------------------------------------------------------------------------
# build


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
            left_out.append(f"{rel_path(r.path, root)}: {e.message}")
    by_judge = group_by_judge(runs)
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
    paired = {id(r): _paired_changes(r) for r in runs}
    if runs:  # the first screen answers "which runs were hacked?"
        rep.sections.append(_hacked_table(runs, summaries, paired, layout.judge_eval))

    if layout.judge_eval is not None and layout.judge_eval_source is not None:
        rep.sections.append(_judge_table(layout.judge_eval, layout.judge_eval_source, root))
    elif layout.kind != "policy":
        rep.sections.append(Text("Judge agreement", "No judge_eval.json was found; the table is left out."))

    if left_out:
        rep.sections.append(Text("Runs left out", "; ".join(left_out)))
    cmp: SeedComparison | None = None
    if runs:
        rep.sections.append(_hacking_table(runs, summaries, window, noise))
        if any(paired.values()):
            rep.sections.append(_paired_table(runs, paired))
        if layout.kind == "study":
            cmp = compute_seed_comparison({j: {r.seed: summaries[id(r)] for r in rs} for j, rs in by_judge.items()})
            rep.sections.extend(_seed_tables(cmp))
        rep.sections.append(figure_proxy_gold(by_judge, summaries))
        for fig in (figure_kl_length(by_judge), figure_gold_vs_sqrt_kl(runs, summaries), figure_train_log(runs)):
            if fig is not None:
                rep.sections.append(fig)
        n_samples = 0
        for r in runs:
            src = rel_path(r.path / "eval_samples.jsonl", root)
            sec = _sample_section(r, summaries[id(r)], samples_per_point, src, first=n_samples == 0)
            if sec is not None:
                rep.sections.append(sec)
                n_samples += 1
        if not any(r.sample_steps for r in runs):
            rep.sections.append(Text(SAMPLES_TITLE, "No eval_samples.jsonl was found in the policy runs."))

    sources = [s for r in runs for s in r.sources]
    if layout.judge_eval_source is not None:
        sources.append(layout.judge_eval_source)
    rep.data = jsonable(
        {
            "schema": REPORT_SCHEMA,
            "run_dir": str(root),
            "layout": layout.kind,
            "settings": {"window": window, "noise": noise, "samples_per_point": samples_per_point},
            "runs": [
                {"judge": r.judge, "seed": r.seed, "path": rel_path(r.path, root), "status": r.status,
                 "proxy_protocol": r.proxy_protocol, "proxy_flaws": r.proxy_flaws,
                 "hacked": _hacked(summaries[id(r)], paired[id(r)]),
                 "summary": summaries[id(r)].to_dict()}
                for r in runs
            ],
            "paired_change": [
                {"judge": r.judge, "seed": r.seed, **{k: v.to_dict() for k, v in paired[id(r)].items()}}
                for r in runs if paired[id(r)]
            ],
            "seed_comparison": cmp.to_dict() if cmp is not None else None,
            "judge_eval": layout.judge_eval,
            "sources": [{"path": rel_path(s.path, root), "sha256": s.sha256, "records": s.records} for s in sources],
        }
    )
    return rep


# ------------------------------------------------------------------------------------------------


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
