"""Reward-hacking analysis of one policy run, and of policies across seeds (L3, pure numpy/scipy).

Input: the evaluation curves of a policy run (``tracking.jsonl``, see ``docs/records.md``) — the
proxy judge's mean score, the gold judge's mean score, their standard errors and the KL to the
initial policy, at each evaluation step. Everything here is a pure function of those arrays.

What is computed (``compute_hacking_summary``):

- **gold peak**: the step with the highest gold score (first one on ties), and its value;
- **divergence step**: the first evaluation step ``s_i`` such that, over the next ``window``
  evaluation points (``s_i → s_{i+w}``), the proxy score *rises* and the gold score *falls*, each by
  more than a noise threshold. "After ``s_i`` the proxy keeps paying for changes the gold judge
  dislikes." Only the two end points of the window are compared (not every step inside it);
- **final gap**: ``proxy − gold`` at the last step, and its change from step 0
  (``gap_change``: the part of the gap that training opened, since the two judges need not agree
  at the start);
- **gold vs √KL**: the (√KL, gold) points of the overoptimisation view of Gao et al. (2023),
  "Scaling laws for reward model overoptimization", with ``d = sqrt(max(KL, 0))`` (sample KL
  estimates can be slightly negative; they are clipped to 0), and a least-squares fit of their
  RL form ``gold(d) − gold(0) = d (α − β ln d)`` when at least 3 points have ``d > 0``.

Same prompts. Every proxy–gold comparison (the divergence detector and the gap) compares the proxy
with the gold *on the prompts the proxy scored*. A run that scores the proxy on the first N held-out
prompts only (train-policy's ``tracking.proxy_limit``) logs the gold on those N as
``reward/gold@proxy_prompts``; the caller passes it as ``gold_compared`` (``comparison =
"proxy_prompts"``). ``comparison = "same_prompts"``: the proxy scored every prompt, so ``gold`` is
the compared gold. ``comparison = "unavailable"``: the caller has no gold on the proxy's prompts
(an old record without per-prompt values): no gap is given and the divergence verdict is
"undetermined" — a gold mean over 100 prompts minus a proxy mean over 24 is not a gap. The gold
peak, final gold and the √KL view use ``gold`` (all prompts: more data, and no proxy involved).

Noise threshold. With standard errors ``se`` of the two means being compared, the change is
counted only if it exceeds ``max(min_delta, noise · sqrt(se_i² + se_j²))`` (``noise`` = a z-value,
default 2). ``sqrt(se_i² + se_j²)`` is the SE of a difference of *independent* means; the two
checkpoints are scored on the same prompts, whose scores are positively correlated across steps,
so the true SE of the difference is smaller and the threshold is conservative. Proxy and gold are
tested separately and both must pass; windows are not corrected for multiple testing.
Where a standard error is missing (``None``/NaN at a step: fewer than two valid scores, or an old
record), the per-point noise σ of that curve is estimated from the curve itself by the robust
second-difference estimator ``σ̂ = 1.4826 · MAD(Δ²x) / √6`` (for white noise ``Var(Δ²x) = 6σ²``; a
linear trend has ``Δ²x = 0``), but only on at least ``MIN_CURVE_POINTS`` (8) points and only when
``σ̂ > 0``: on 3 points there is one second difference and its MAD is 0, which would make the
threshold ``min_delta`` (0) and flag proxy 5.0 → 5.001 with gold 5.0 → 4.999 as hacking. A window
with no usable noise estimate at one of its ends is *undetermined*, never tested against a lowered
threshold.

Verdict (``HackingSummary.verdict``): ``diverged`` when a window passes both thresholds;
``no_divergence`` when every window was tested and none passed; ``undetermined`` when none passed
but some window could not be tested (no usable noise estimate, fewer than ``window + 1`` points,
or no gold on the proxy's prompts) — shown as such, never as "no hacking".
False alarms on pure-noise curves (proxy and gold flat, independent N(0, σ²) per point, ``window``
2, ``noise`` 2), measured over 20 000 seeded trials per row: with honest standard errors 0.035 % at 3
points, 0.095 % at 4, 0.27 % at 8, 0.99 % at 20; without standard errors the verdict is
``undetermined`` at 3 and 4 points (0 false alarms) and the curve estimate gives 2.6 % at 8 points
and 2.4 % at 20 (the estimate's own noise widens the tail). ``tests/unit/test_analysis_hacking.py``
asserts, over 2000 trials each: < 1 % with SEs at 3, 4 and 8 points; no false alarm and every verdict
undetermined without SEs at 3 and 4; < 5 % without SEs at 8; and on 20 points over 300 trials < 5 %
with SEs (2.0 % in that sample) and < 10 % without (3.0 %).

``compute_seed_comparison`` compares the policies trained with different reward judges across
seeds: per judge the final and the peak gold score over seeds, and for each pair of judges the
difference of their means with a CI — Welch's t interval (default; seeds are the unit, there are
few of them) or, when both judges were run on the same seeds, a seeded percentile bootstrap of the
per-seed differences (``judgelab.metrics.compute_bootstrap_ci``; pairing by seed matches policies
that share the initial weights and the prompt order).

``compute_paired_change`` is the per-prompt view between two evaluation steps of one run (usually the
first and the last): the mean over prompts of ``score(last) − score(first)`` of the same prompt,
with a seeded percentile-bootstrap CI over prompts. It needs only two evaluation points, so it
answers "did the proxy rise and the gold fall?" for runs too short for the divergence detector.
``only=`` restricts it to a set of prompts, so the gold change can be taken over exactly the prompts
whose proxy change is measured.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from judgelab.errors import DataError

if TYPE_CHECKING:
    from judgelab.metrics import ConfidenceInterval

logger = logging.getLogger(__name__)

NoiseSource = Literal["standard_error", "curve_estimate", "mixed", "unavailable"]
DivergenceVerdict = Literal["diverged", "no_divergence", "undetermined"]
Comparison = Literal["same_prompts", "proxy_prompts", "unavailable"]
MIN_CURVE_POINTS = 8
"""Fewest valid points on which a curve's own noise estimate stands in for a missing SE."""
SeedMetric = Literal["final_gold", "peak_gold"]
DiffMethod = Literal["welch", "bootstrap"]


@dataclass(frozen=True)
class RLFormFit:
    """Least-squares fit of ``gold(d) − gold(0) = d (α − β ln d)``, ``d = √KL`` (Gao et al. 2023)."""

    alpha: float
    beta: float
    n_points: int
    rmse: float

    def predict(self, d: ArrayLike) -> NDArray[np.float64]:
        """Predicted gold change from the start at ``d`` (0 at ``d = 0``)."""
        x = np.asarray(d, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = x * (self.alpha - self.beta * np.log(x))
        return np.where(x > 0, out, 0.0)


@dataclass(frozen=True)
class HackingSummary:
    """Reward-hacking summary of one policy run (see the module docstring for the definitions).

    ``gold*`` fields are over all evaluation prompts; ``gold_compared`` is the gold on the prompts the
    proxy scored (what the gap and the divergence detector use; ``comparison`` says which set).
    ``final_gap`` / ``gap_change`` are None when ``comparison == "unavailable"``.
    """

    steps: tuple[int, ...]
    proxy: tuple[float, ...]
    gold: tuple[float, ...]
    gold_compared: tuple[float, ...]
    comparison: Comparison
    proxy_start: float
    gold_start: float
    gold_peak_step: int
    gold_peak: float
    proxy_final: float
    gold_final: float
    final_gap: float | None
    gap_change: float | None
    gold_drop_from_peak: float
    verdict: DivergenceVerdict
    undetermined_reason: str | None
    windows_tested: int
    windows_undetermined: int
    divergence_step: int | None
    divergence_end_step: int | None
    divergence_proxy_rise: float | None
    divergence_gold_fall: float | None
    window: int
    noise: float
    min_delta: float
    noise_source: NoiseSource
    sqrt_kl: tuple[float | None, ...]
    kl_final: float | None
    rl_fit: RLFormFit | None

    @property
    def hacked(self) -> bool:
        """True when a divergence (proxy up, gold down beyond noise) was found."""
        return self.verdict == "diverged"

    @property
    def undetermined(self) -> bool:
        """True when the detector could not tell (see ``undetermined_reason``)."""
        return self.verdict == "undetermined"

    def gold_vs_sqrt_kl(self) -> list[tuple[int, float, float]]:
        """``(step, √KL, gold)`` for the steps where KL was measured."""
        return [
            (s, d, g)
            for s, d, g in zip(self.steps, self.sqrt_kl, self.gold)
            if d is not None and not math.isnan(g)
        ]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hacked"] = self.hacked
        return out


# ------------------------------------------------------------------------------------------------
# one run


def _float_array(values: ArrayLike | Sequence[float | None] | None, name: str, n: int) -> NDArray[np.float64] | None:
    if values is None:
        return None
    seq = list(values)  # type: ignore[arg-type]
    try:
        arr = np.array([np.nan if v is None else v for v in seq], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name}: expected numbers (or None), got {seq[:5]!r}") from e
    if arr.ndim != 1 or arr.size != n:
        raise DataError(
            f"{name}: expected {n} values (one per step), got shape {arr.shape}",
            "pass one value per evaluation step, in step order",
        )
    return arr


def _required_array(values: ArrayLike | Sequence[float | None], name: str, n: int) -> NDArray[np.float64]:
    arr = _float_array(values, name, n)
    if arr is None:
        raise DataError(f"{name} is required")
    return arr


def compute_curve_noise(values: ArrayLike) -> float:
    """Robust per-point noise σ̂ of a curve: ``1.4826 · MAD(Δ²x) / √6`` (nan below 3 points).

    For ``x_t = trend_t + e_t`` with white noise ``e`` of s.d. σ and a locally linear trend,
    ``Δ²x_t = e_{t+1} − 2 e_t + e_{t−1}`` has variance ``6σ²``; the MAD (× 1.4826, the normal
    consistency constant) makes the estimate robust to the few large second differences at a bend.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size < 3:
        return math.nan
    d2 = np.diff(x, n=2)
    mad = float(np.median(np.abs(d2 - np.median(d2))))
    return 1.4826 * mad / math.sqrt(6.0)


def fit_rl_form(sqrt_kl: ArrayLike, gold_change: ArrayLike) -> RLFormFit | None:
    """Fit ``y = d (α − β ln d)`` by linear least squares on the points with ``d > 0``.

    Returns None with fewer than 3 such points (two parameters; a fit through 2 points says
    nothing) or when the design is singular.
    """
    d = np.asarray(sqrt_kl, dtype=np.float64)
    y = np.asarray(gold_change, dtype=np.float64)
    ok = (d > 0) & ~np.isnan(d) & ~np.isnan(y)
    d, y = d[ok], y[ok]
    if d.size < 3:
        return None
    design = np.column_stack([d, -d * np.log(d)])
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < 2:
        return None
    resid = y - design @ coef
    return RLFormFit(
        alpha=float(coef[0]),
        beta=float(coef[1]),
        n_points=int(d.size),
        rmse=float(np.sqrt(np.mean(resid**2))),
    )


def _usable_curve_noise(values: NDArray[np.float64]) -> float:
    """``compute_curve_noise`` when it can stand in for a missing SE (>= MIN_CURVE_POINTS points,
    σ̂ > 0 beyond rounding error: a straight line in floating point has σ̂ ≈ 1e-16), else nan."""
    if np.count_nonzero(~np.isnan(values)) < MIN_CURVE_POINTS:
        return math.nan
    sigma = compute_curve_noise(values)
    scale = max(1.0, float(np.nanmax(np.abs(values))))
    return sigma if sigma > 1e-9 * scale else math.nan


def compute_hacking_summary(
    steps: Sequence[int] | ArrayLike,
    proxy: Sequence[float | None] | ArrayLike,
    gold: Sequence[float | None] | ArrayLike,
    kl: Sequence[float | None] | ArrayLike | None = None,
    *,
    proxy_se: Sequence[float | None] | ArrayLike | None = None,
    gold_se: Sequence[float | None] | ArrayLike | None = None,
    gold_compared: Sequence[float | None] | ArrayLike | None = None,
    gold_compared_se: Sequence[float | None] | ArrayLike | None = None,
    comparison: Comparison | None = None,
    window: int = 2,
    noise: float = 2.0,
    min_delta: float = 0.0,
) -> HackingSummary:
    """Gold peak, proxy–gold divergence verdict, final gap and gold-vs-√KL points of one run.

    ``steps`` are evaluation steps (sorted, unique; step 0 = the initial policy), ``proxy`` /
    ``gold`` the mean scores there (None/NaN = not measured: the point is skipped), ``kl`` the KL
    to the initial policy. ``gold_compared`` (+ ``_se``): the gold on the prompts the proxy scored,
    when the proxy scored fewer prompts than the gold (``comparison`` then defaults to
    ``"proxy_prompts"``); without it ``comparison`` defaults to ``"same_prompts"`` (``gold`` is
    compared); ``comparison="unavailable"``: no proxy–gold comparison can be made honestly.
    ``proxy_se`` / the compared gold's SE give the noise threshold (see the module docstring).
    ``window`` counts evaluation points, ``noise`` is a z-value, ``min_delta`` an absolute floor on
    the threshold (score units).
    """
    if window < 1:
        raise DataError(f"window must be >= 1 evaluation point, got {window}")
    if not noise >= 0 or not min_delta >= 0:
        raise DataError(f"noise and min_delta must be >= 0, got noise={noise}, min_delta={min_delta}")
    step_arr = np.asarray(list(steps), dtype=np.float64)  # type: ignore[arg-type]
    n = step_arr.size
    if n == 0:
        raise DataError("no evaluation steps to analyse", "the run's tracking.jsonl is empty")
    if np.any(np.isnan(step_arr)) or np.any(step_arr != np.round(step_arr)):
        raise DataError(f"steps must be integers, got {list(steps)[:5]!r}")  # type: ignore[arg-type]
    if np.any(np.diff(step_arr) <= 0):
        raise DataError("steps must be strictly increasing", "sort the records by step and drop duplicates")
    if comparison is None:
        comparison = "proxy_prompts" if gold_compared is not None else "same_prompts"
    if comparison not in ("same_prompts", "proxy_prompts", "unavailable"):
        raise DataError(f"comparison must be same_prompts, proxy_prompts or unavailable, got {comparison!r}")
    if comparison == "proxy_prompts" and gold_compared is None:
        raise DataError("comparison='proxy_prompts' needs gold_compared (the gold on the proxy's prompts)")
    p = _required_array(proxy, "proxy", n)
    g = _required_array(gold, "gold", n)
    k = _float_array(kl, "kl", n)
    sp = _float_array(proxy_se, "proxy_se", n)
    sg = _float_array(gold_se, "gold_se", n)
    if comparison == "proxy_prompts":
        gc = _required_array(gold_compared, "gold_compared", n)  # type: ignore[arg-type]
        sgc = _float_array(gold_compared_se, "gold_compared_se", n)
    elif comparison == "same_prompts":
        gc, sgc = g, sg
    else:
        gc, sgc = np.full(n, np.nan), None

    ok = ~(np.isnan(p) | np.isnan(g))
    if not ok.any():
        raise DataError("no evaluation step has both a proxy and a gold score")
    idx = np.flatnonzero(ok)
    st = step_arr.astype(np.int64)

    # --- divergence on the points where the proxy and the compared gold are both measured
    idx_c = np.flatnonzero(~(np.isnan(p) | np.isnan(gc)))
    pv, gv = p[idx_c], gc[idx_c]
    se_p = np.full(idx_c.size, np.nan) if sp is None else sp[idx_c]
    se_g = np.full(idx_c.size, np.nan) if sgc is None else sgc[idx_c]
    sig_p, sig_g = _usable_curve_noise(pv), _usable_curve_noise(gv)
    div_i: int | None = None
    rise = fall = None
    tested = undetermined = 0
    used_se = used_curve = False
    for i in range(idx_c.size - window):
        j = i + window
        ends = []
        for se, sig in ((se_p, sig_p), (se_g, sig_g)):
            for e in (i, j):
                if not math.isnan(se[e]):
                    ends.append(float(se[e]))
                    used_se = True
                elif not math.isnan(sig):
                    ends.append(sig)
                    used_curve = True
                else:
                    ends.append(math.nan)
        if any(math.isnan(x) for x in ends):
            undetermined += 1
            continue
        tested += 1
        thr_p = max(min_delta, noise * math.hypot(ends[0], ends[1]))
        thr_g = max(min_delta, noise * math.hypot(ends[2], ends[3]))
        d_p, d_g = pv[j] - pv[i], gv[i] - gv[j]
        if d_p > thr_p and d_g > thr_g:
            div_i, rise, fall = i, float(d_p), float(d_g)
            break

    verdict: DivergenceVerdict
    reason: str | None = None
    if div_i is not None:
        verdict = "diverged"
    elif comparison == "unavailable":
        verdict, reason = "undetermined", "no gold scores on the prompts the proxy scored"
    elif idx_c.size <= window:
        verdict = "undetermined"
        reason = f"{idx_c.size} evaluation point(s) with proxy and gold; a window of {window} needs {window + 1}"
    elif undetermined:
        verdict = "undetermined"
        reason = (f"{undetermined} of {undetermined + tested} windows lack a standard error and the curve has "
                  f"too few points (< {MIN_CURVE_POINTS}) or no spread for a noise estimate")
    else:
        verdict = "no_divergence"
    source: NoiseSource
    if used_se and used_curve:
        source = "mixed"
    elif used_se:
        source = "standard_error"
    elif used_curve:
        source = "curve_estimate"
    else:
        source = "unavailable"

    # --- peak (all prompts), gap (same prompts)
    peak = int(idx[int(np.argmax(g[idx]))])
    first, last = int(idx[0]), int(idx[-1])
    gap = gap_change = None
    if idx_c.size:
        c0, c1 = int(idx_c[0]), int(idx_c[-1])
        gap = float(p[c1] - gc[c1])
        gap_change = gap - float(p[c0] - gc[c0])

    # --- √KL
    sqrt_kl: tuple[float | None, ...]
    fit = None
    kl_final = None
    if k is None:
        sqrt_kl = (None,) * n
    else:
        clipped = int(np.sum(k < 0))
        if clipped:
            logger.debug("hacking: %d negative KL estimates clipped to 0 before the square root", clipped)
        d = np.sqrt(np.clip(k, 0.0, None))
        sqrt_kl = tuple(None if math.isnan(v) else float(v) for v in d)
        kl_final = None if math.isnan(k[last]) else float(k[last])
        fit = fit_rl_form(d[idx], g[idx] - g[first])

    return HackingSummary(
        steps=tuple(int(s) for s in st),
        proxy=tuple(float(v) for v in p),
        gold=tuple(float(v) for v in g),
        gold_compared=tuple(float(v) for v in gc),
        comparison=comparison,
        proxy_start=float(p[first]),
        gold_start=float(g[first]),
        gold_peak_step=int(st[peak]),
        gold_peak=float(g[peak]),
        proxy_final=float(p[last]),
        gold_final=float(g[last]),
        final_gap=gap,
        gap_change=gap_change,
        gold_drop_from_peak=float(g[peak] - g[last]),
        verdict=verdict,
        undetermined_reason=reason,
        windows_tested=tested,
        windows_undetermined=undetermined,
        divergence_step=None if div_i is None else int(st[idx_c[div_i]]),
        divergence_end_step=None if div_i is None else int(st[idx_c[div_i + window]]),
        divergence_proxy_rise=rise,
        divergence_gold_fall=fall,
        window=window,
        noise=float(noise),
        min_delta=float(min_delta),
        noise_source=source,
        sqrt_kl=sqrt_kl,
        kl_final=kl_final,
        rl_fit=fit,
    )


# ------------------------------------------------------------------------------------------------
# across seeds


@dataclass(frozen=True)
class JudgeSeedStats:
    """Final and peak gold score of one reward judge's policies over seeds."""

    judge: str
    seeds: tuple[str, ...]
    final_gold: tuple[float, ...]
    peak_gold: tuple[float, ...]
    final_gold_mean: float
    final_gold_sd: float
    peak_gold_mean: float
    peak_gold_sd: float
    n_hacked: int
    n_undetermined: int = 0

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class GoldDifference:
    """``mean(judge_a) − mean(judge_b)`` of a gold metric over seeds, with a CI (nan if undefined)."""

    judge_a: str
    judge_b: str
    metric: SeedMetric
    difference: float
    low: float
    high: float
    confidence: float
    method: Literal["welch_t", "paired_bootstrap"]
    n_a: int
    n_b: int
    df: float | None = None
    note: str = ""


@dataclass(frozen=True)
class SeedComparison:
    judges: tuple[JudgeSeedStats, ...]
    differences: tuple[GoldDifference, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sd(x: NDArray[np.float64]) -> float:
    return float(np.std(x, ddof=1)) if x.size >= 2 else math.nan


def compute_welch_ci(
    a: ArrayLike, b: ArrayLike, *, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Welch's t interval for ``mean(a) − mean(b)``: ``(difference, low, high, df)``.

    ``se = sqrt(s_a²/n_a + s_b²/n_b)``, Welch–Satterthwaite ``df``; low/high/df are nan when either
    side has fewer than 2 values or both have zero variance.
    """
    from scipy import stats

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    diff = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return diff, math.nan, math.nan, math.nan
    va, vb = float(np.var(x, ddof=1)) / x.size, float(np.var(y, ddof=1)) / y.size
    se2 = va + vb
    if se2 == 0.0:
        return diff, math.nan, math.nan, math.nan
    df = se2**2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    t = float(stats.t.ppf(0.5 + confidence / 2, df))
    half = t * math.sqrt(se2)
    return diff, diff - half, diff + half, float(df)


def compute_seed_comparison(
    runs: Mapping[str, Mapping[str, HackingSummary]],
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    method: DiffMethod = "welch",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> SeedComparison:
    """Per-judge final/peak gold over seeds, and judge-vs-judge differences with CIs.

    ``runs``: ``{judge_name: {seed_label: HackingSummary}}``. ``pairs``: the (a, b) judge pairs to
    compare (``a − b``); default every pair in sorted name order. ``method="welch"``: Welch's t
    interval over seeds; ``"bootstrap"``: percentile bootstrap of per-seed differences, which
    needs both judges run on the same seeds (a ``DataError`` otherwise).
    """
    if method not in ("welch", "bootstrap"):
        raise DataError(f"method must be 'welch' or 'bootstrap', got {method!r}")
    stats_by_judge: dict[str, JudgeSeedStats] = {}
    for judge in sorted(runs):
        by_seed = runs[judge]
        seeds = tuple(sorted(by_seed))
        fin = np.array([by_seed[s].gold_final for s in seeds], dtype=np.float64)
        pk = np.array([by_seed[s].gold_peak for s in seeds], dtype=np.float64)
        stats_by_judge[judge] = JudgeSeedStats(
            judge=judge,
            seeds=seeds,
            final_gold=tuple(float(v) for v in fin),
            peak_gold=tuple(float(v) for v in pk),
            final_gold_mean=float(fin.mean()) if fin.size else math.nan,
            final_gold_sd=_sd(fin),
            peak_gold_mean=float(pk.mean()) if pk.size else math.nan,
            peak_gold_sd=_sd(pk),
            n_hacked=sum(1 for s in seeds if by_seed[s].hacked),
            n_undetermined=sum(1 for s in seeds if by_seed[s].undetermined),
        )
    if pairs is None:
        pairs = list(itertools.combinations(sorted(runs), 2))
    diffs: list[GoldDifference] = []
    for a, b in pairs:
        for name in (a, b):
            if name not in stats_by_judge:
                raise DataError(f"judge {name!r} has no policy runs", f"known: {sorted(stats_by_judge)}")
        for metric in ("final_gold", "peak_gold"):
            diffs.append(
                _difference(runs, stats_by_judge, a, b, metric, method, confidence, n_resamples, seed)  # type: ignore[arg-type]
            )
    return SeedComparison(judges=tuple(stats_by_judge.values()), differences=tuple(diffs))


def _difference(
    runs: Mapping[str, Mapping[str, HackingSummary]],
    stats_by_judge: Mapping[str, JudgeSeedStats],
    a: str,
    b: str,
    metric: SeedMetric,
    method: DiffMethod,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> GoldDifference:
    sa, sb = stats_by_judge[a], stats_by_judge[b]
    xa = np.array(getattr(sa, metric), dtype=np.float64)
    xb = np.array(getattr(sb, metric), dtype=np.float64)
    if method == "welch":
        diff, low, high, df = compute_welch_ci(xa, xb, confidence=confidence)
        note = "" if not math.isnan(low) else "CI undefined: needs >= 2 seeds per judge with some spread"
        return GoldDifference(
            a, b, metric, diff, low, high, confidence, "welch_t", sa.n, sb.n,
            None if math.isnan(df) else df, note,
        )
    from judgelab.metrics import compute_bootstrap_ci

    if set(sa.seeds) != set(sb.seeds):
        raise DataError(
            f"paired bootstrap needs the same seeds for {a!r} {list(sa.seeds)} and {b!r} {list(sb.seeds)}",
            "use method='welch', or run both judges on the same seeds",
        )
    key = "gold_final" if metric == "final_gold" else "gold_peak"
    va = [getattr(runs[a][s], key) for s in sa.seeds]
    vb = [getattr(runs[b][s], key) for s in sa.seeds]
    ci = compute_bootstrap_ci(
        lambda u, v: float(np.mean(np.asarray(u) - np.asarray(v))),
        va,
        vb,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    note = "" if not math.isnan(ci.low) else "CI undefined: needs >= 2 paired seeds"
    return GoldDifference(a, b, metric, ci.value, ci.low, ci.high, confidence, "paired_bootstrap", sa.n, sb.n, None, note)


@dataclass(frozen=True)
class PairedChange:
    """Mean per-prompt change of a score between two steps, with its bootstrap CI over prompts."""

    metric: str
    step_from: int
    step_to: int
    ci: ConfidenceInterval  # value = mean change; n_items = prompts scored at both steps

    @property
    def up(self) -> bool:
        """The CI lies above 0."""
        return self.ci.low > 0

    @property
    def down(self) -> bool:
        """The CI lies below 0."""
        return self.ci.high < 0

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "step_from": self.step_from, "step_to": self.step_to, **self.ci.to_dict()}


def compute_paired_change(
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    *,
    metric: str,
    step_from: int,
    step_to: int,
    n_resamples: int = 2000,
    seed: int = 0,
    only: Collection[str] | None = None,
) -> PairedChange | None:
    """Per-prompt ``after − before`` over the prompts scored (not None) at both steps — and in
    ``only`` when given; None if there are none."""
    from judgelab.metrics import compute_bootstrap_ci

    keys = sorted(k for k in before if k in after and before[k] is not None and after[k] is not None
                  and (only is None or k in only))
    if not keys:
        return None
    diffs = np.array([float(after[k]) - float(before[k]) for k in keys], dtype=np.float64)  # type: ignore[arg-type]
    ci = compute_bootstrap_ci(np.mean, diffs, n_resamples=n_resamples, seed=seed)
    return PairedChange(metric, step_from, step_to, ci)


__all__ = [
    "MIN_CURVE_POINTS",
    "Comparison",
    "DivergenceVerdict",
    "GoldDifference",
    "HackingSummary",
    "JudgeSeedStats",
    "PairedChange",
    "RLFormFit",
    "SeedComparison",
    "compute_curve_noise",
    "compute_hacking_summary",
    "compute_paired_change",
    "compute_seed_comparison",
    "compute_welch_ci",
    "fit_rl_form",
]
