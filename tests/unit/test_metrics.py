"""judgelab.metrics against independent implementations and hand-computed values."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from scipy import stats

from judgelab.errors import DataError
from judgelab.metrics import (
    compute_alpha_vs_gold,
    compute_bootstrap_ci,
    compute_calibration_error,
    compute_krippendorff_alpha_interval,
    compute_pearson,
    compute_spearman,
)

NAN = math.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 coders x 12 units
# example with missing values; the paper gives alpha_interval = 0.849.
KRIPP_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def alpha_interval_by_pairs(data: list[list[float]]) -> float:
    """Independent, literal implementation: alpha = 1 - D_o / D_e over ordered pairs of values.

    D_o: within-unit ordered pairs (i != j) weighted 1 / (m_u - 1), divided by n (pairable values).
    D_e: all ordered pairs of pairable values (c != k), divided by n (n - 1).
    """
    units = []
    for col in zip(*data):
        vals = [v for v in col if not math.isnan(v)]
        if len(vals) >= 2:
            units.append(vals)
    pooled = [v for u in units for v in u]
    n = len(pooled)
    d_o = sum(
        sum((u[i] - u[j]) ** 2 for i in range(len(u)) for j in range(len(u)) if i != j) / (len(u) - 1)
        for u in units
    ) / n
    d_e = sum((pooled[c] - pooled[k]) ** 2 for c in range(n) for k in range(n) if c != k) / (n * (n - 1))
    return 1 - d_o / d_e


class TestKrippendorffAlpha:
    def test_published_example(self):
        assert compute_krippendorff_alpha_interval(KRIPP_EXAMPLE) == pytest.approx(0.849, abs=5e-4)

    def test_hand_computed_two_units(self):
        # units (1,2) and (3,3): D_o = 2/4, D_e = 22/12  ->  alpha = 1 - 0.5 / (22/12) = 8/11
        assert compute_alpha_vs_gold([1, 3], [2, 3]) == pytest.approx(8 / 11, abs=1e-12)

    def test_perfect_agreement_is_one(self):
        assert compute_alpha_vs_gold([0, 4, 9, 2], [0, 4, 9, 2]) == pytest.approx(1.0)

    def test_constant_everything_is_undefined(self):
        assert math.isnan(compute_alpha_vs_gold([3, 3, 3], [3, 3, 3]))

    def test_constant_judge_vs_varying_gold_is_not_positive(self):
        # A judge that always says 0 carries no information: alpha must not be positive.
        gold = [0, 3, 6, 9, 2, 7]
        assert compute_alpha_vs_gold([0] * 6, gold) < 0

    def test_invalid_predictions_are_left_out(self):
        pred = [1, None, 3, 5]
        gold = [1, 8, 3, 4]
        assert compute_alpha_vs_gold(pred, gold) == pytest.approx(
            compute_alpha_vs_gold([1, 3, 5], [1, 3, 4])
        )

    @pytest.mark.parametrize("seed", range(6))
    def test_matches_package_and_pairwise_on_random_data(self, seed):
        rng = np.random.default_rng(seed)
        raters, units = int(rng.integers(2, 5)), int(rng.integers(5, 25))
        data = rng.integers(0, 10, size=(raters, units)).astype(float)
        if seed % 2:  # continuous values (expected scores) on odd seeds
            data += rng.normal(0, 0.7, size=data.shape)
        data[rng.random(data.shape) < 0.2] = np.nan
        ours = compute_krippendorff_alpha_interval(data)
        assert ours == pytest.approx(
            krippendorff.alpha(reliability_data=data, level_of_measurement="interval"), abs=1e-9
        )
        assert ours == pytest.approx(alpha_interval_by_pairs(data.tolist()), abs=1e-9)

    def test_needs_two_raters(self):
        with pytest.raises(DataError):
            compute_krippendorff_alpha_interval([[1, 2, 3]])

    def test_length_mismatch(self):
        with pytest.raises(DataError):
            compute_alpha_vs_gold([1, 2], [1, 2, 3])


class TestCorrelations:
    def test_pearson_spearman_match_scipy_on_valid_items(self):
        pred = [1.0, 2.5, None, 4.0, 3.0, 7.0]
        gold = [1, 3, 5, 3, 4, 8]
        keep = [0, 1, 3, 4, 5]
        p = [pred[i] for i in keep]
        g = [gold[i] for i in keep]
        assert compute_pearson(pred, gold) == pytest.approx(stats.pearsonr(p, g).statistic)
        assert compute_spearman(pred, gold) == pytest.approx(stats.spearmanr(p, g).statistic)

    def test_hand_computed_pearson(self):
        # x = (1,2,3), y = (1,3,2): cov = 0.5 (pop: 1/3), var_x = var_y = 2/3 -> r = 0.5
        assert compute_pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)

    def test_constant_is_nan(self):
        assert math.isnan(compute_pearson([2, 2, 2], [1, 2, 3]))
        assert math.isnan(compute_spearman([1, 2, 3], [5, 5, 5]))


class TestCalibration:
    def test_calibration_hand_computed(self):
        # bins of width 3 on [0, 9]: [0,3) holds 1.0 and 2.0 (gold 0, 4), [6,9] holds 9.0 (gold 9)
        res = compute_calibration_error([1.0, 2.0, 9.0], [0, 4, 9], low=0, high=9, n_bins=3)
        # bin 1: mean pred 1.5, mean gold 2.0 -> |0.5| * 2/3 ; bin 3: 0 -> ece = 1/3
        assert res.ece == pytest.approx(1 / 3)
        assert [b.count for b in res.bins] == [2, 1]
        assert res.bins[-1].high == 9.0

    def test_perfect_calibration_is_zero(self):
        x = [0.0, 1.5, 4.0, 8.9]
        assert compute_calibration_error(x, x, low=0, high=9).ece == pytest.approx(0.0)


def _accuracy(pred, gold) -> float:
    """A statistic of two string samples (an invalid prediction, None, counts as wrong)."""
    return sum(p is not None and p == g for p, g in zip(pred, gold)) / len(gold)


class TestBootstrap:
    def test_mean_ci_matches_hand_written_percentile_bootstrap(self):
        """Same seed and resampling scheme as scipy -> identical percentile interval."""
        rng = np.random.default_rng(1)
        x = rng.normal(5, 2, size=60)
        ci = compute_bootstrap_ci(lambda a: float(np.mean(a)), x, n_resamples=2000, seed=7)
        # independent: a numpy percentile bootstrap drawing indices the way scipy.stats.bootstrap
        # does with the same generator (rng.integers(0, n, size=(n_resamples, n))).
        gen = np.random.default_rng(7)
        idx = gen.integers(0, len(x), size=(2000, len(x)))
        means = x[idx].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        assert ci.value == pytest.approx(x.mean())
        assert ci.low == pytest.approx(lo, rel=1e-9)
        assert ci.high == pytest.approx(hi, rel=1e-9)
        assert ci.low < x.mean() < ci.high

    def test_ci_covers_normal_theory_interval_roughly(self):
        rng = np.random.default_rng(3)
        x = rng.normal(0, 1, size=400)
        ci = compute_bootstrap_ci(lambda a: float(np.mean(a)), x, n_resamples=1500, seed=0)
        se = x.std(ddof=1) / math.sqrt(len(x))
        assert ci.low == pytest.approx(x.mean() - 1.96 * se, abs=0.35 * se)
        assert ci.high == pytest.approx(x.mean() + 1.96 * se, abs=0.35 * se)

    def test_seeded_and_paired(self):
        pred = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
        gold = [0, 3, 4, 5, 9, 1, 2, 5, 8, 9]
        a = compute_bootstrap_ci(compute_alpha_vs_gold, pred, gold, n_resamples=300, seed=4)
        b = compute_bootstrap_ci(compute_alpha_vs_gold, pred, gold, n_resamples=300, seed=4)
        assert a == b
        assert a.value == pytest.approx(compute_alpha_vs_gold(pred, gold))
        # paired resampling: identical pred and gold stay identical in every resample -> alpha 1
        same = compute_bootstrap_ci(compute_alpha_vs_gold, gold, gold, n_resamples=200, seed=0)
        assert (same.low, same.high) == pytest.approx((1.0, 1.0))

    def test_undefined_resamples_are_counted_not_hidden(self):
        pred = [0, 0, 0, 9]
        gold = [0, 0, 0, 9]
        ci = compute_bootstrap_ci(compute_alpha_vs_gold, pred, gold, n_resamples=400, seed=0)
        # P(no 9 drawn in 4 draws) = (3/4)^4 ~ 0.32 -> about 126 undefined resamples
        assert 60 < ci.n_undefined_resamples < 200
        assert ci.low == pytest.approx(1.0) and ci.high == pytest.approx(1.0)

    def test_string_samples(self):
        pred = ["A", "B", None, "A", "B", "A"]
        gold = ["A", "A", "B", "A", "B", "B"]
        ci = compute_bootstrap_ci(_accuracy, pred, gold, n_resamples=300, seed=0)
        assert ci.value == pytest.approx(0.5)
        assert 0.0 <= ci.low <= 0.5 <= ci.high <= 1.0

    def test_bad_arguments(self):
        with pytest.raises(DataError):
            compute_bootstrap_ci(np.mean)
        with pytest.raises(DataError):
            compute_bootstrap_ci(_accuracy, ["A"], ["A", "B"])
        with pytest.raises(DataError):
            compute_bootstrap_ci(np.mean, [1, 2], confidence=1.5)


def test_pairwise_oracle_is_itself_right_on_a_tiny_case():
    """Guard the test oracle: the 8/11 case worked by hand."""
    assert alpha_interval_by_pairs([[1, 3], [2, 3]]) == pytest.approx(8 / 11)
