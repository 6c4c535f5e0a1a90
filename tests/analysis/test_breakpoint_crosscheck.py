"""capstudy's breakpoint against an independent implementation: ``piecewise-regression``.

The package (Pilgrim 2021, JOSS) fits Muggeo's iterative segmented regression, whose model is
a line whose slope changes at the breakpoint (the left arm's slope is free, capstudy's hinge
has it flat), and tests for the break with Davies' test. On simulated studies with a known
breakpoint (flat gain below 100 k parameters, then rising: a case both models contain) the two
must find the same breakpoint and both must detect it.

Davies' test is given the per-capacity mean gains: the package takes its candidate range
from the 3rd and 3rd-last *data points*, which with several seeds per capacity are the end
capacities themselves and make its design singular. With equal seeds per capacity the hinge
breakpoint on the means equals the one on the per-seed gains (the within-capacity sum of
squares does not depend on it).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from capstudy.analysis.simulate import simulate_gain_arrays
from capstudy.analysis.threshold import find_threshold

piecewise_regression = pytest.importorskip("piecewise_regression")
davies = pytest.importorskip("piecewise_regression.davies")

TRUE_X0 = 5.0
REPS = 40
# Bounds sit about 3 binomial SDs (at 40 studies) below the rates measured on 80 simulated
# studies: 95% of Muggeo fits converge; median |capstudy - Muggeo| 0.10 decade; Muggeo's
# estimate inside capstudy's 95% CI 82%; median error capstudy 0.10, Muggeo 0.20 decade
# (Muggeo also fits the left arm's slope, so its estimate is the noisier one); Davies p < 0.05
# in 86%; capstudy's hinge beats the line in 94%.


def _one_study(rng: np.random.Generator) -> tuple[float, float, float, float, float, bool]:
    """(capstudy x0, its CI lo, hi, Muggeo x0 or NaN, Davies p, capstudy beats the line)."""
    x, y, strata = simulate_gain_arrays(rng, x0=TRUE_X0, n_seeds=3)
    fit = find_threshold(x, y, strata, n_boot=199, rng=rng, grid_points=121)
    caps = np.unique(x)
    means = np.array([y[x == c].mean() for c in caps])
    # The package draws its bootstrap restarts from numpy's global generator: seed it from
    # ours (so the test is reproducible) and put the global state back afterwards.
    state = np.random.get_state()
    np.random.seed(int(rng.integers(2**31)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels warns on its bootstrap restarts
            muggeo = piecewise_regression.Fit(x, y, n_breakpoints=1, start_values=[5.3], n_boot=20)
            result = muggeo.get_results()
            p_davies = float(davies.davies_test(caps, means))
    finally:
        np.random.set_state(state)
    estimate = result["estimates"]["breakpoint1"]["estimate"] if result["converged"] else np.nan
    return fit.x0, fit.x0_lo, fit.x0_hi, float(estimate), p_davies, fit.p_vs_linear < 0.05


def test_breakpoint_agrees_with_muggeo_and_davies():
    rng = np.random.default_rng(2024)
    rows = np.array([_one_study(rng) for _ in range(REPS)], dtype=float)
    ours, lo, hi, muggeo, p_davies, ours_beats_line = rows.T
    ok = np.isfinite(muggeo)
    diff = np.abs(ours[ok] - muggeo[ok])
    inside = np.mean((lo[ok] <= muggeo[ok]) & (muggeo[ok] <= hi[ok]))
    print(
        f"\n{ok.sum()}/{REPS} Muggeo fits converged; median |capstudy - Muggeo| = "
        f"{np.median(diff):.3f} decades; Muggeo inside capstudy's CI: {inside:.0%}; "
        f"median error capstudy {np.median(np.abs(ours - TRUE_X0)):.3f}, Muggeo "
        f"{np.median(np.abs(muggeo[ok] - TRUE_X0)):.3f}; Davies p < 0.05: "
        f"{np.mean(p_davies < 0.05):.0%}; capstudy hinge beats the line: "
        f"{np.mean(ours_beats_line):.0%}"
    )
    assert ok.sum() >= 0.8 * REPS
    assert np.median(diff) <= 0.15  # same breakpoint within ~1/2 capacity step (0.33 decade)
    assert inside >= 0.65
    assert np.median(np.abs(ours - TRUE_X0)) <= 0.15
    assert np.median(np.abs(muggeo[ok] - TRUE_X0)) <= 0.3
    assert np.mean(p_davies < 0.05) >= 0.7 and np.mean(ours_beats_line) >= 0.8
