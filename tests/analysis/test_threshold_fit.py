"""Hinge fitting and the threshold verdict on small, exactly known data."""

from __future__ import annotations

import numpy as np
import pytest

from capstudy.analysis import hinge
from capstudy.analysis.threshold import (
    VERDICT_INSUFFICIENT,
    VERDICT_NONE,
    VERDICT_THRESHOLD,
    find_threshold,
)

X = np.repeat(np.linspace(4.2, 6.6, 8), 3)


def test_noiseless_hinge_is_recovered_between_grid_points():
    y = 0.02 + 0.1 * np.maximum(0.0, X - 5.123)
    fit = hinge.fit_hinge(X, y, hinge.breakpoint_grid(X, 31))  # coarse grid: refinement works
    assert fit.x0 == pytest.approx(5.123, abs=1e-4)
    assert fit.a == pytest.approx(0.02, abs=1e-6) and fit.b == pytest.approx(0.1, abs=1e-5)


def test_hinge_nests_line_and_constant():
    rng = np.random.default_rng(0)
    y = rng.normal(size=X.size)
    grid = hinge.breakpoint_grid(X)
    rss = hinge.profile_rss(X, y, grid)[0]
    assert rss[0] == pytest.approx(hinge.rss_linear(X, y)[0])
    assert rss[-1] == pytest.approx(hinge.rss_constant(y)[0])
    assert rss.min() <= min(rss[0], rss[-1])


def test_clear_threshold_found_and_clear_line_is_not():
    rng = np.random.default_rng(1)
    noise = 0.01 * rng.standard_normal(X.size)
    hinge_fit = find_threshold(X, 0.1 * np.maximum(0, X - 5.0) + noise, n_boot=300, rng=rng)
    assert hinge_fit.verdict == VERDICT_THRESHOLD and hinge_fit.best_model == "hinge"
    assert hinge_fit.x0_lo < 5.0 < hinge_fit.x0_hi
    assert hinge_fit.p_vs_linear < 0.05 and hinge_fit.delta_aicc > 0
    line_fit = find_threshold(X, 0.05 * X + noise, n_boot=300, rng=rng)
    assert line_fit.verdict == VERDICT_NONE and line_fit.best_model == "linear"
    flat_fit = find_threshold(X, 0.03 + noise, n_boot=300, rng=rng)
    assert flat_fit.verdict == VERDICT_NONE and flat_fit.best_model == "constant"


def test_three_capacities_are_not_enough():
    x = np.repeat([4.5, 5.5, 6.5], 4)
    fit = find_threshold(x, np.maximum(0, x - 5), n_boot=100)
    assert fit.verdict == VERDICT_INSUFFICIENT and np.isnan(fit.x0)
