"""t intervals and the multiplicity adjustments against independent references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from capstudy.analysis import intervals


def test_t_interval_matches_scipy_and_the_moment_form():
    v = np.array([0.03, 0.05, 0.01, 0.06])
    lo, hi, p = intervals.t_interval(v)
    ref = stats.ttest_1samp(v, 0.0)
    ci = ref.confidence_interval(0.95)
    assert (lo, hi, p) == pytest.approx((ci.low, ci.high, ref.pvalue))
    m_lo, m_hi, m_p = intervals.t_from_moments(
        np.array([v.mean(), 0.2]), np.array([v.std(ddof=1), np.nan]), np.array([4, 1])
    )
    assert (m_lo[0], m_hi[0], m_p[0]) == pytest.approx((lo, hi, p))
    assert np.isnan(m_lo[1]) and np.isnan(m_p[1])  # one seed: no interval


def test_holm_and_bh_match_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan, 0.001])
    ok = np.isfinite(p)
    holm_ref = multitest.multipletests(p[ok], method="holm")[1]
    bh_ref = multitest.multipletests(p[ok], method="fdr_bh")[1]
    assert intervals.holm(p)[ok] == pytest.approx(holm_ref)
    assert intervals.benjamini_hochberg(p)[ok] == pytest.approx(bh_ref)
    assert np.isnan(intervals.holm(p)[4]) and np.isnan(intervals.benjamini_hochberg(p)[4])


def test_t_interval_at_another_level_and_with_too_few_values():
    v = np.array([0.03, 0.05, 0.01, 0.06])
    ci = stats.ttest_1samp(v, 0.0).confidence_interval(0.80)
    assert intervals.t_interval(v, level=0.80)[:2] == pytest.approx((ci.low, ci.high))
    for few in ([], [0.2], [0.2, np.nan]):  # NaNs are dropped before counting
        assert all(np.isnan(x) for x in intervals.t_interval(np.array(few, dtype=float)))


def test_missing_values_given_as_none_are_missing_not_an_error():
    # Per-seed gains read from a table with a missing run arrive as None in an object array.
    lo, hi, p = intervals.t_interval([0.03, None, 0.05, 0.01, 0.06])
    assert (lo, hi, p) == pytest.approx(intervals.t_interval(np.array([0.03, 0.05, 0.01, 0.06])))
    lo, hi, p = intervals.t_from_moments([0.2, None], [0.1, None], [4, 1])
    assert lo[0] == pytest.approx(0.2 - stats.t.ppf(0.975, 3) * 0.1 / 2)
    assert np.isnan(lo[1]) and np.isnan(hi[1]) and np.isnan(p[1])


def test_zero_spread_gives_a_point_interval_without_warnings():
    # Identical gains on every seed (a deterministic metric): no spread, so no t statistic.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0/0 or x/0 must not leak a RuntimeWarning
        assert intervals.t_interval(np.array([0.1, 0.1, 0.1])) == pytest.approx((0.1, 0.1, 0.0))
        assert intervals.t_interval(np.zeros(3)) == (0.0, 0.0, 1.0)
        lo, hi, p = intervals.t_from_moments([0.1, 0.0, 0.2], [0.0, 0.0, 0.1], [3, 3, 3])
    assert list(p[:2]) == [0.0, 1.0] and list(lo[:2]) == list(hi[:2]) == [0.1, 0.0]
    assert 0 < p[2] < 1


@pytest.mark.parametrize("adjust", [intervals.holm, intervals.benjamini_hochberg])
def test_adjustments_of_one_test_none_and_missing(adjust):
    assert list(adjust(np.array([0.03]))) == [0.03]  # one test: nothing to adjust
    assert adjust(np.array([])).shape == (0,)
    assert np.isnan(adjust(np.array([np.nan]))).all()
    got = adjust([0.01, None, 0.04])  # None (an object array) is missing, like NaN
    assert np.isnan(got[1]) and list(got[[0, 2]]) == list(adjust(np.array([0.01, 0.04])))


def test_holm_caps_at_one():
    # 2 x 0.6 = 1.2 is no probability; the step-down keeps the order: both 1.
    assert list(intervals.holm(np.array([0.6, 0.7]))) == [1.0, 1.0]
    assert intervals.holm(np.array([0.2, 0.01, 0.3])) == pytest.approx([0.4, 0.03, 0.4])
