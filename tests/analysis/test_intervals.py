"""t intervals and the multiplicity adjustments against independent references."""

from __future__ import annotations

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
