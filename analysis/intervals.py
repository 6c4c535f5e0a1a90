"""Honest intervals and multiplicity: the t interval of a mean gain, Holm and Benjamini-Hochberg.

Why a t interval for the gain, not a bootstrap or a sign-flip (permutation) interval:
a capacity study has 2-5 seeds per variant. A percentile bootstrap of n values cannot be wider
than their range and, even inflated by sqrt(n/(n-1)), covered the true gain about 60% of the
time with 2 seeds and 83% with 3 (simulated). An exact sign-flip test has only 2^n sign
patterns: its smallest two-sided p-value is 2/2^n = 0.5 with 2 seeds and 0.25 with 3, so it
can never exclude zero at 5% there. Student's t interval, ``mean +- t_{n-1} s / sqrt(n)``,
is exact for Gaussian seed noise at every n >= 2 (it pays for the small n with wide
intervals: t_1 = 12.7 at 95%), and the paired gain's noise is a difference of two runs'
seed noise, close to symmetric. ``tests/analysis/test_validation.py`` checks its coverage
by simulation (Gaussian and heavy-tailed noise).

Multiplicity: "the smallest capacity whose gain differs from zero" looks at every capacity
of a comparison, so its p-values are Holm-adjusted across capacities (family-wise error <=
alpha for any dependence). Threshold verdicts are many tests per study (families x domains x
inits): they are Benjamini-Hochberg adjusted across all of them (false discovery rate).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

# Below this many seeds the report calls gain intervals unreliable and names no significant
# capacity: the t interval is exact only if seed noise is Gaussian, and with two seeds there
# is no way to check that (one difference, one degree of freedom).
MIN_RELIABLE_SEEDS = 3


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Student-t interval of a mean and the two-sided p-value of "mean = 0".

    One sample's form of :func:`t_from_moments` (the function the analysis runs), so the two
    cannot drift apart.

    Args:
        values: one gain per seed (NaNs dropped).
        level: confidence level.

    Returns:
        ``(lo, hi, p)``; NaNs with fewer than 2 values. Zero spread gives a zero-width
        interval and p = 0 (or 1 when the mean is 0 too).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan"), float("nan"), float("nan")
    lo, hi, p = t_from_moments(
        np.array([v.mean()]), np.array([v.std(ddof=1)]), np.array([v.size]), level
    )
    return float(lo[0]), float(hi[0]), float(p[0])


def t_from_moments(
    mean: np.ndarray, sd: np.ndarray, n: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, ...]:
    """:func:`t_interval` from per-group mean, sample SD and count: ``(lo, hi, p)`` arrays.

    Groups with fewer than 2 values get NaNs; a zero SD gives a zero-width interval and
    p = 0 (1 when the mean is 0 too), as in :func:`t_interval`.
    """
    mean, sd = np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)
    n = np.asarray(n, dtype=float)
    ok = n >= 2
    dof = np.where(ok, n - 1, 1)
    se = np.where(ok, sd / np.sqrt(np.maximum(n, 1)), np.nan)
    half = stats.t.ppf(0.5 + level / 2.0, dof) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(
            se > 0, 2.0 * stats.t.sf(np.abs(mean) / se, dof), np.where(mean == 0, 1.0, 0.0)
        )
    p = np.where(ok, p, np.nan)
    return mean - half, mean + half, p


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaNs stay NaN and do not count as tests)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaNs stay NaN and do not count."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out
