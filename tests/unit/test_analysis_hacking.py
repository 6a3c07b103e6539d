"""Reward-hacking analysis on hand-made curves (expected values worked out by hand in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from judgelab.analysis.hacking import (
    compute_curve_noise,
    compute_hacking_summary,
    compute_paired_change,
    compute_seed_comparison,
    compute_welch_ci,
    fit_rl_form,
)
from judgelab.errors import DataError

STEPS = [0, 10, 20, 30, 40, 50, 60, 70, 80]
# gold rises to a peak at step 40 then falls; proxy rises throughout
GOLD = [5.0, 5.5, 6.0, 6.3, 6.4, 6.2, 5.8, 5.2, 4.5]
PROXY = [5.0, 5.6, 6.2, 6.8, 7.4, 8.0, 8.5, 8.9, 9.0]
SE = [0.05] * 9  # threshold = 2 * sqrt(0.05² + 0.05²) = 0.1414


def test_divergence_found_at_right_step_with_se_threshold():
    s = compute_hacking_summary(STEPS, PROXY, GOLD, proxy_se=SE, gold_se=SE, window=2)
    # windows (i, i+2): gold 5.0→6.0, 5.5→6.3, 6.0→6.4 rise; 6.3→6.2 falls only 0.1 < 0.1414;
    # 6.4→5.8 falls 0.6 and proxy 7.4→8.5 rises 1.1 → divergence after step 40, window ends at 60
    assert s.noise_source == "standard_error"
    assert s.divergence_step == 40
    assert s.divergence_end_step == 60
    assert s.divergence_gold_fall == pytest.approx(0.6)
    assert s.divergence_proxy_rise == pytest.approx(1.1)
    assert s.hacked


def test_threshold_matters():
    # with no noise threshold, the 0.1 fall of window (30 → 50) already counts
    s = compute_hacking_summary(STEPS, PROXY, GOLD, proxy_se=SE, gold_se=SE, window=2, noise=0.0)
    assert s.divergence_step == 30
    # a large absolute floor (1.0) is only passed by window (50 → 70): gold 6.2→5.2? fall 1.0 is not
    # > 1.0; (60 → 80): gold 5.8→4.5 fall 1.3, proxy 8.5→9.0 rise 0.5 < 1.0 → none at all
    s = compute_hacking_summary(STEPS, PROXY, GOLD, proxy_se=SE, gold_se=SE, min_delta=1.0)
    assert s.divergence_step is None
    assert not s.hacked


def test_window_one():
    # window 1: first (i, i+1) with proxy up and gold down by > 0.1414: 40→50 falls only 0.2 > 0.1414 → step 40
    s = compute_hacking_summary(STEPS, PROXY, GOLD, proxy_se=SE, gold_se=SE, window=1)
    assert s.divergence_step == 40 and s.divergence_end_step == 50
    # with bigger SEs (0.1 → thr 0.283) 40→50 (0.2) is noise, 50→60 (0.4) is not
    s = compute_hacking_summary(STEPS, PROXY, GOLD, proxy_se=[0.1] * 9, gold_se=[0.1] * 9, window=1)
    assert s.divergence_step == 50


def test_gold_peak_gap_and_start():
    s = compute_hacking_summary(STEPS, PROXY, GOLD, proxy_se=SE, gold_se=SE)
    assert (s.gold_peak_step, s.gold_peak) == (40, 6.4)
    assert s.gold_start == 5.0 and s.proxy_start == 5.0
    assert s.final_gap == pytest.approx(9.0 - 4.5)
    assert s.gap_change == pytest.approx(4.5 - 0.0)
    assert s.gold_drop_from_peak == pytest.approx(6.4 - 4.5)


def test_gap_change_is_relative_to_start():
    s = compute_hacking_summary([0, 1, 2], [6.0, 6.5, 7.0], [4.0, 4.0, 4.0])
    assert s.final_gap == pytest.approx(3.0)
    assert s.gap_change == pytest.approx(1.0)  # the proxy already scored 2 points higher at step 0


def test_peak_ties_take_first_and_nan_points_skipped():
    s = compute_hacking_summary([0, 5, 10, 15], [1, 2, None, 4], [3.0, 7.0, 9.0, 7.0])
    # step 10 has no proxy score → skipped; the remaining gold maximum 7.0 first occurs at step 5
    assert s.gold_peak_step == 5 and s.gold_peak == 7.0
    assert s.proxy_final == 4.0 and s.gold_final == 7.0


def test_both_falling_is_not_hacking():
    gold = [6.0, 5.5, 5.0, 4.5, 4.0]
    proxy = [6.0, 5.8, 5.6, 5.4, 5.2]
    s = compute_hacking_summary(range(5), proxy, gold, proxy_se=[0.01] * 5, gold_se=[0.01] * 5)
    assert s.divergence_step is None


def test_noisy_flat_curves_rarely_flag_divergence():
    """Flat curves with honest SEs: false alarms are rare with the threshold and common without."""
    n_steps, sd, trials = 20, 0.1, 300
    hits, hits_no_threshold = 0, 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        proxy = 5.0 + rng.normal(0, sd, n_steps)
        gold = 5.0 + rng.normal(0, sd, n_steps)
        se = [sd] * n_steps
        s = compute_hacking_summary(range(n_steps), proxy, gold, proxy_se=se, gold_se=se)
        hits += s.hacked
        s0 = compute_hacking_summary(range(n_steps), proxy, gold, proxy_se=se, gold_se=se, noise=0.0)
        hits_no_threshold += s0.hacked
    assert hits / trials < 0.05
    assert hits_no_threshold / trials > 0.9


def test_curve_noise_estimate_without_se():
    rng = np.random.default_rng(0)
    x = 3.0 + 0.2 * np.arange(400) + rng.normal(0, 0.5, 400)  # linear trend + N(0, 0.5²)
    assert compute_curve_noise(x) == pytest.approx(0.5, rel=0.15)
    assert compute_curve_noise(np.arange(10.0)) == 0.0  # exact line: no noise
    assert math.isnan(compute_curve_noise([1.0, 2.0]))


def test_divergence_without_se_uses_curve_estimate():
    # the hand-made curves are exactly linear in places (σ̂ ≈ 1e-16: no usable noise estimate, so
    # undetermined rather than a zero threshold); with measurement noise the estimate is usable
    assert compute_hacking_summary(STEPS, PROXY, GOLD).verdict == "undetermined"
    rng = np.random.default_rng(3)
    s = compute_hacking_summary(STEPS, np.array(PROXY) + rng.normal(0, 0.05, 9),
                                np.array(GOLD) + rng.normal(0, 0.05, 9))
    assert s.noise_source == "curve_estimate"
    assert s.divergence_step is not None and s.divergence_step >= 30
    trials, hits = 200, 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        hits += compute_hacking_summary(range(20), rng.normal(5, 0.1, 20), rng.normal(5, 0.1, 20)).hacked
    assert hits / trials < 0.1


def test_too_few_points_for_noise_estimate():
    s = compute_hacking_summary([0, 1], [1.0, 5.0], [5.0, 1.0], window=1)
    assert s.noise_source == "unavailable" and s.divergence_step is None


def test_sqrt_kl_points_and_clipping():
    kl = [0.0, 0.01, 0.04, 0.09, 0.16, 0.25, 0.36, 0.49, -0.001]
    s = compute_hacking_summary(STEPS, PROXY, GOLD, kl, proxy_se=SE, gold_se=SE)
    assert s.sqrt_kl[:8] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert s.sqrt_kl[8] == 0.0  # negative KL estimate clipped to 0
    pts = s.gold_vs_sqrt_kl()
    assert pts[4] == (40, pytest.approx(0.4), 6.4)
    assert s.kl_final == -0.001
    s2 = compute_hacking_summary(STEPS, PROXY, GOLD, [None] * 8 + [0.5])
    assert s2.gold_vs_sqrt_kl() == [(80, pytest.approx(math.sqrt(0.5)), 4.5)]


def test_rl_form_fit_recovers_parameters_and_matches_scipy():
    from scipy.optimize import curve_fit

    d = np.linspace(0.1, 3.0, 12)
    y = d * (1.5 - 0.8 * np.log(d))
    fit = fit_rl_form(d, y)
    assert fit is not None
    assert fit.alpha == pytest.approx(1.5) and fit.beta == pytest.approx(0.8)
    assert fit.rmse == pytest.approx(0.0, abs=1e-9)
    # noisy points: same answer as scipy's nonlinear least squares
    rng = np.random.default_rng(1)
    yn = y + rng.normal(0, 0.05, y.size)
    fit = fit_rl_form(np.r_[0.0, d], np.r_[0.0, yn])  # d = 0 carries no information and is dropped
    (a, b), _ = curve_fit(lambda x, a, b: x * (a - b * np.log(x)), d, yn, p0=[1.0, 1.0])
    assert fit is not None and fit.n_points == 12
    assert (fit.alpha, fit.beta) == (pytest.approx(a, rel=1e-6), pytest.approx(b, rel=1e-6))
    assert fit.predict([0.0, 1.0]) == pytest.approx([0.0, fit.alpha])
    assert fit_rl_form([0.0, 0.5, 1.0], [0.0, 0.1, 0.2]) is None  # only 2 points with d > 0


def test_summary_fits_gold_change_from_start():
    d = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    gold = 4.0 + np.where(d > 0, d * (1.0 - 0.6 * np.log(np.where(d > 0, d, 1))), 0.0)
    s = compute_hacking_summary(range(6), gold + 1, gold, d**2)
    assert s.rl_fit is not None
    assert (s.rl_fit.alpha, s.rl_fit.beta) == (pytest.approx(1.0), pytest.approx(0.6))


def test_input_errors():
    with pytest.raises(DataError, match="strictly increasing"):
        compute_hacking_summary([0, 2, 1], [1, 2, 3], [1, 2, 3])
    with pytest.raises(DataError, match="3 values"):
        compute_hacking_summary([0, 1, 2], [1, 2], [1, 2, 3])
    with pytest.raises(DataError, match="window"):
        compute_hacking_summary([0, 1, 2], [1, 2, 3], [1, 2, 3], window=0)
    with pytest.raises(DataError, match="both a proxy and a gold"):
        compute_hacking_summary([0, 1], [None, 1.0], [2.0, None])


def test_to_dict_is_json_ready():
    import json

    s = compute_hacking_summary(STEPS, PROXY, GOLD, [0.01 * i for i in range(9)], proxy_se=SE, gold_se=SE)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["divergence_step"] == 40 and d["hacked"] is True and d["rl_fit"]["n_points"] == 8


# ------------------------------------------------------------------------------------------------
# across seeds


def _run(final: float, peak: float):
    # a 3-point curve whose gold peaks at `peak` (step 1) and ends at `final`
    return compute_hacking_summary([0, 1, 2], [1.0, 2.0, 3.0], [min(final, peak) - 1, peak, final])


def test_welch_ci_hand_computed_and_vs_scipy():
    from scipy import stats

    a, b = [5.0, 6.0, 7.0], [3.0, 4.0]
    diff, low, high, df = compute_welch_ci(a, b)
    # means 6 and 3.5; s² = 1 and 0.5; se² = 1/3 + 0.5/2 = 0.58333
    # df = 0.58333² / ((1/3)²/2 + 0.25²/1) = 0.340278 / 0.118056 = 2.88235
    assert diff == pytest.approx(2.5)
    assert df == pytest.approx(0.340277778 / 0.118055556, rel=1e-6)
    half = stats.t.ppf(0.975, df) * math.sqrt(0.58333333)
    assert (low, high) == (pytest.approx(2.5 - half), pytest.approx(2.5 + half))
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (low, high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert math.isnan(compute_welch_ci([1.0], [2.0, 3.0])[1])
    assert math.isnan(compute_welch_ci([1.0, 1.0], [2.0, 2.0])[1])


def test_seed_comparison_welch():
    runs = {
        "reasoning": {"seed0": _run(6.0, 6.5), "seed1": _run(7.0, 7.5), "seed2": _run(5.0, 6.0)},
        "plain": {"seed0": _run(3.0, 6.0), "seed1": _run(4.0, 6.2)},
    }
    cmp = compute_seed_comparison(runs)
    by = {j.judge: j for j in cmp.judges}
    assert by["reasoning"].final_gold == (6.0, 7.0, 5.0)
    assert by["reasoning"].final_gold_mean == pytest.approx(6.0)
    assert by["reasoning"].final_gold_sd == pytest.approx(1.0)
    assert by["plain"].peak_gold_mean == pytest.approx(6.1)
    # default pairs: sorted names → ("plain", "reasoning"), difference plain − reasoning
    final = next(d for d in cmp.differences if d.metric == "final_gold")
    assert (final.judge_a, final.judge_b) == ("plain", "reasoning")
    ref = compute_welch_ci([3.0, 4.0], [6.0, 7.0, 5.0])
    assert (final.difference, final.low, final.high) == pytest.approx(ref[:3])
    assert final.method == "welch_t" and final.n_a == 2 and final.n_b == 3
    cmp2 = compute_seed_comparison(runs, pairs=[("reasoning", "plain")])
    assert cmp2.differences[0].difference == pytest.approx(2.5)


def test_seed_comparison_paired_bootstrap():
    runs = {
        "a": {f"seed{i}": _run(6.0 + 0.1 * i, 7.0) for i in range(5)},
        "b": {f"seed{i}": _run(5.0 + 0.3 * i, 7.0) for i in range(5)},
    }
    cmp = compute_seed_comparison(runs, method="bootstrap", n_resamples=500)
    final = next(d for d in cmp.differences if d.metric == "final_gold")
    # per-seed differences a − b = 1.0, 0.8, 0.6, 0.4, 0.2 → mean 0.6; bootstrap means lie in [0.2, 1.0]
    assert final.method == "paired_bootstrap"
    assert final.difference == pytest.approx(0.6)
    assert 0.2 <= final.low < 0.6 < final.high <= 1.0
    peak = next(d for d in cmp.differences if d.metric == "peak_gold")
    assert peak.difference == pytest.approx(0.0)
    runs["b"].pop("seed4")
    with pytest.raises(DataError, match="same seeds"):
        compute_seed_comparison(runs, method="bootstrap")


def test_seed_comparison_unknown_judge():
    with pytest.raises(DataError, match="no policy runs"):
        compute_seed_comparison({"a": {"s": _run(1.0, 2.0)}}, pairs=[("a", "zzz")])


# ---------------------------------------------------------------------------- paired change
def test_paired_change_is_the_mean_per_prompt_difference_with_a_bootstrap_ci():
    before = {"a": 1.0, "b": 2.0, "c": 3.0, "d": None, "e": 4.0}
    after = {"a": 2.0, "b": 2.5, "c": 5.0, "d": 9.0, "f": 0.0}  # d invalid before, e/f unmatched
    ch = compute_paired_change(before, after, metric="gold", step_from=0, step_to=8)
    assert ch.ci.n_items == 3 and ch.ci.value == pytest.approx((1.0 + 0.5 + 2.0) / 3)
    # every resample is a mean of three of the differences {0.5, 1, 2}: the CI lies within them
    assert 0.5 <= ch.ci.low <= ch.ci.value <= ch.ci.high <= 2.0
    assert ch.up and not ch.down
    assert ch.to_dict()["metric"] == "gold" and ch.to_dict()["step_to"] == 8
    flat = compute_paired_change({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.5, "b": 1.5, "c": 3.0},
                                 metric="proxy", step_from=0, step_to=1)
    assert not flat.up and not flat.down  # differences +0.5, -0.5, 0: the CI spans 0
    assert compute_paired_change({"a": None}, {"a": 1.0}, metric="gold", step_from=0, step_to=1) is None


# ------------------------------------------------------------------------------------------------
# issue 11: a missing SE never lowers the threshold; too little information is "undetermined"


def test_missing_se_on_three_points_is_undetermined_not_hacked():
    """Reproduction: proxy 5.0 → 5.001, gold 5.0 → 4.999 was flagged (curve noise 0 on 3 points)."""
    s = compute_hacking_summary([0, 1, 2], [5.0, 5.0005, 5.001], [5.0, 4.9995, 4.999])
    assert not s.hacked and s.divergence_step is None
    assert s.verdict == "undetermined" and "too few points" in s.undetermined_reason
    # SEs given but one missing (gold had < 2 valid scores at step 2): the same, not a zero threshold
    s = compute_hacking_summary([0, 1, 2], [5.0, 5.0005, 5.001], [5.0, 4.9995, 4.999],
                                proxy_se=[0.1, 0.1, 0.1], gold_se=[0.1, 0.1, None])
    assert s.verdict == "undetermined" and not s.hacked and s.windows_undetermined == 1
    # with every SE present the tiny changes are noise: tested, and no divergence
    s = compute_hacking_summary([0, 1, 2], [5.0, 5.0005, 5.001], [5.0, 4.9995, 4.999],
                                proxy_se=[0.1] * 3, gold_se=[0.1] * 3)
    assert s.verdict == "no_divergence" and s.windows_tested == 1


def test_a_missing_se_uses_the_curve_estimate_only_where_it_is_usable():
    # 9 points (>= MIN_CURVE_POINTS): a missing SE at one step is replaced by the curve's own noise
    se = list(SE)
    se[6] = None
    gold = np.array(GOLD) + np.random.default_rng(5).normal(0, 0.05, 9)
    s = compute_hacking_summary(STEPS, PROXY, gold, proxy_se=SE, gold_se=se, window=2)
    assert s.noise_source == "mixed" and s.verdict == "diverged" and s.windows_undetermined == 0
    # the hand-made gold is exactly linear in places: no usable estimate, so window 40 → 60 is
    # undetermined and the first testable divergence is the next window (50 → 70)
    s = compute_hacking_summary(STEPS, PROXY, GOLD, proxy_se=SE, gold_se=se, window=2)
    assert s.windows_undetermined == 1 and s.divergence_step == 50
    # a perfectly straight proxy curve has σ̂ = 0: never a zero threshold, those windows are undetermined
    line = [5.0 + 0.1 * i for i in range(9)]
    s = compute_hacking_summary(STEPS, line, GOLD)
    assert s.verdict == "undetermined" and s.windows_tested == 0 and s.noise_source == "unavailable"


def _false_alarm_rate(n: int, trials: int, with_se: bool) -> tuple[float, float]:
    hits = undetermined = 0
    for seed in range(trials):
        rng = np.random.default_rng([n, seed])
        proxy, gold = 5.0 + rng.normal(0, 0.1, n), 5.0 + rng.normal(0, 0.1, n)
        se = {"proxy_se": [0.1] * n, "gold_se": [0.1] * n} if with_se else {}
        s = compute_hacking_summary(range(n), proxy, gold, **se)
        hits += s.hacked
        undetermined += s.undetermined
    return hits / trials, undetermined / trials


@pytest.mark.parametrize("n", [3, 4, 8])
def test_false_alarm_rate_on_pure_noise(n):
    """Flat independent N(0, 0.1²) curves, window 2, noise 2, 2000 trials per case.

    Asserted: < 1 % with honest SEs (measured over 20 000 trials: 0.035 %, 0.095 %, 0.27 % at 3, 4,
    8 points); without SEs no false alarm and every verdict 'undetermined' at 3 and 4 points, and
    < 5 % at 8 points, where the curve's own noise estimate is used (measured 2.6 %)."""
    rate, undetermined = _false_alarm_rate(n, 2000, with_se=True)
    assert rate < 0.01 and undetermined == 0.0
    rate, undetermined = _false_alarm_rate(n, 2000, with_se=False)
    if n < 8:
        assert rate == 0.0 and undetermined == 1.0
    else:
        assert rate < 0.05 and undetermined < 0.01


# ------------------------------------------------------------------------------------------------
# issue 11: proxy and gold compared on the same prompts


def test_gap_and_divergence_use_the_gold_on_the_proxys_prompts():
    # gold over all prompts falls, but on the proxy's prompts it rises with the proxy: no hacking
    steps, proxy = [0, 1, 2, 3], [5.0, 5.5, 6.0, 6.5]
    gold_all, gold_on_proxy = [5.0, 4.5, 4.0, 3.5], [5.0, 5.4, 5.8, 6.2]
    se = [0.05] * 4
    naive = compute_hacking_summary(steps, proxy, gold_all, proxy_se=se, gold_se=se)
    assert naive.hacked  # what comparing different prompt sets concluded
    s = compute_hacking_summary(steps, proxy, gold_all, proxy_se=se, gold_se=se,
                                gold_compared=gold_on_proxy, gold_compared_se=se)
    assert s.comparison == "proxy_prompts" and s.verdict == "no_divergence"
    assert s.final_gap == pytest.approx(6.5 - 6.2) and s.gap_change == pytest.approx(0.3)
    assert s.gold_final == 3.5 and s.gold_peak == 5.0  # the gold's own view stays all prompts
    assert s.gold_compared == tuple(gold_on_proxy)
    # no gold on the proxy's prompts: no gap, verdict undetermined
    u = compute_hacking_summary(steps, proxy, gold_all, proxy_se=se, gold_se=se, comparison="unavailable")
    assert u.final_gap is None and u.gap_change is None
    assert u.verdict == "undetermined" and not u.hacked and "proxy scored" in u.undetermined_reason
    with pytest.raises(DataError, match="gold_compared"):
        compute_hacking_summary(steps, proxy, gold_all, comparison="proxy_prompts")


def test_paired_change_can_be_restricted_to_the_proxys_prompts():
    before = {"a": 1.0, "b": 1.0, "c": 5.0}
    after = {"a": 2.0, "b": 2.0, "c": 0.0}
    all_prompts = compute_paired_change(before, after, metric="gold", step_from=0, step_to=1, n_resamples=200)
    same = compute_paired_change(before, after, metric="gold", step_from=0, step_to=1, n_resamples=200,
                                 only={"a", "b"})
    assert all_prompts.ci.n_items == 3 and all_prompts.ci.value == pytest.approx(-1.0)
    assert same.ci.n_items == 2 and same.ci.value == pytest.approx(1.0)
