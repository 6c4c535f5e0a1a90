"""Hinge fitting and the threshold verdict on small, exactly known data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capstudy.analysis import hinge
from capstudy.analysis.threshold import (
    VERDICT_INSUFFICIENT,
    VERDICT_NONE,
    VERDICT_THRESHOLD,
    find_threshold,
    fit_thresholds,
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
    # A power law with a tiny exponent is the line again: either may describe it best.
    assert line_fit.verdict == VERDICT_NONE and line_fit.best_model in ("linear", "smooth")
    flat_fit = find_threshold(X, 0.03 + noise, n_boot=300, rng=rng)
    assert flat_fit.verdict == VERDICT_NONE and flat_fit.best_model == "constant"


def test_three_capacities_are_not_enough():
    x = np.repeat([4.5, 5.5, 6.5], 4)
    fit = find_threshold(x, np.maximum(0, x - 5), n_boot=100)
    assert fit.verdict == VERDICT_INSUFFICIENT and np.isnan(fit.x0)


def test_the_breakpoint_search_keeps_two_capacities_on_each_arm():
    rng = np.random.default_rng(3)
    # Flat everywhere except the largest capacity: a breakpoint between the two largest
    # would leave one capacity on the sloped arm.
    y = 0.3 * np.maximum(0, X - 6.4) + 0.01 * rng.standard_normal(X.size)
    fit = find_threshold(X, y, n_boot=300, rng=rng)
    caps = np.unique(X)
    # The search keeps two capacities on the flat arm and two strictly above the kink.
    assert caps[1] <= fit.x0 <= caps[-3]
    assert np.count_nonzero(caps > fit.x0) >= 2 and np.count_nonzero(caps <= fit.x0) >= 2


def test_direction_is_recorded_for_a_falling_hinge():
    rng = np.random.default_rng(4)
    y = 0.05 - 0.1 * np.maximum(0, X - 5.0) + 0.01 * rng.standard_normal(X.size)
    fit = find_threshold(X, y, n_boot=300, rng=rng)
    assert fit.verdict == VERDICT_THRESHOLD and fit.direction == -1 and fit.slope < 0


def test_a_smooth_power_law_is_not_called_a_threshold():
    rng = np.random.default_rng(5)
    # Saturating growth: gain = 0.12 - 0.1 * C^-0.8 (C in units of 10^5 parameters).
    y = 0.12 - 0.1 * 10 ** (-0.8 * (X - 5.0)) + 0.01 * rng.standard_normal(X.size)
    fit = find_threshold(X, y, n_boot=300, rng=rng)
    assert fit.verdict == VERDICT_NONE and fit.best_model == "smooth"
    assert fit.p_vs_smooth > 0.05 and fit.p_threshold == max(
        fit.p_vs_constant, fit.p_vs_linear, fit.p_vs_smooth
    )


def test_no_threshold_rows_leave_threshold_columns_empty_and_bh_adjusts():
    rng = np.random.default_rng(6)
    rows = []
    for domain, truth in (("hinge", lambda x: 0.1 * np.maximum(0, x - 5.0)), ("flat", None)):
        y = (truth(X) if truth else np.zeros(X.size)) + 0.01 * rng.standard_normal(X.size)
        for k, (x, g) in enumerate(zip(X, y, strict=True)):
            rows.append(
                {
                    "family": "f",
                    "train_domain": "t",
                    "eval_domain": domain,
                    "init": "i",
                    "variant_key": f"v{x:.3f}",
                    "seed": k % 3,
                    "phi": 0,
                    "backbone_params": 10**x,
                    "gain": g,
                }
            )
    fits = fit_thresholds(
        pd.DataFrame(rows), "backbone_params", n_boot=200, rng=rng, grid_points=121
    ).set_index("eval_domain")
    assert fits.loc["hinge", "verdict"] == VERDICT_THRESHOLD
    assert fits.loc["hinge", "direction"] == 1 and fits.loc["hinge", "threshold"] > 0
    assert fits.loc["flat", "verdict"] == VERDICT_NONE and fits.loc["flat", "direction"] == 0
    for col in ("threshold", "threshold_lo", "threshold_hi", "plateau", "slope", "x0"):
        assert np.isnan(fits.loc["flat", col])
    assert (fits["p_threshold_adj"] >= fits["p_threshold"]).all()
    assert (fits["n_threshold_tests"] == 2).all()


def test_plateau_statement_is_equivalence_first_then_difference():
    from capstudy.analysis.threshold import plateau_statement

    # 90% interval inside ±0.02: vanishes, even if the 95% interval excludes zero.
    assert plateau_statement(0.001, 0.019, 0.002, 0.018, 0.02) == "vanishes"
    # Not equivalent, 95% interval above zero: persists.
    assert plateau_statement(0.01, 0.05, 0.012, 0.045, 0.02) == "persists"
    assert plateau_statement(-0.05, -0.01, -0.045, -0.012, 0.02) == "persists"
    # Neither: undetermined.
    assert plateau_statement(-0.01, 0.03, -0.005, 0.025, 0.02) == "undetermined"
    # The margin is a bound, inclusive: a 90% interval touching it still counts.
    assert plateau_statement(-0.03, 0.03, -0.02, 0.02, 0.02) == "vanishes"
