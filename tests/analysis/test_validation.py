"""Statistical validation of the threshold analysis on simulated studies with a known truth.

Settings mirror a small real study: the 8 ultrasmall capacities (17 k - 3.6 M backbone
parameters), 3 seeds, run-to-run SD 0.015 of mAP50, and a true gain flat at zero below 100 k
parameters rising by 0.1 mAP50 per tenfold capacity above. Seeds are fixed, so the numbers are
reproducible; they are printed (``pytest -s``) for the README.

Nominal level is 95%; the requirements are >= 90% coverage and >= 90% "no threshold" on data
without one. The last test shows the coverage check has teeth: the same harness with a 50%
interval must fail it.
"""

from __future__ import annotations

import numpy as np

from capstudy.analysis.simulate import simulate_gain_arrays
from capstudy.analysis.threshold import VERDICT_THRESHOLD, find_threshold

TRUE_X0 = 5.0  # log10(100 k parameters)
REPS = 200
N_BOOT = 200
GRID = 121


def _threshold_runs(seed: int, level: float = 0.95) -> tuple[float, float]:
    """Coverage of the breakpoint CI and the share of runs finding a threshold."""
    rng = np.random.default_rng(seed)
    covered = found = 0
    for _ in range(REPS):
        x, y, strata = simulate_gain_arrays(rng, x0=TRUE_X0)
        fit = find_threshold(x, y, strata, n_boot=N_BOOT, rng=rng, level=level, grid_points=GRID)
        covered += fit.x0_lo <= TRUE_X0 <= fit.x0_hi
        found += fit.verdict == VERDICT_THRESHOLD
    return covered / REPS, found / REPS


def _no_threshold_rate(seed: int, slope: float) -> float:
    rng = np.random.default_rng(seed)
    none = 0
    for _ in range(REPS):
        x, y, strata = simulate_gain_arrays(rng, x0=None, plateau=0.02, slope=slope)
        fit = find_threshold(x, y, strata, n_boot=N_BOOT, rng=rng, grid_points=GRID)
        none += fit.verdict != VERDICT_THRESHOLD
    return none / REPS


def test_breakpoint_ci_covers_the_true_threshold():
    coverage, found = _threshold_runs(seed=20240601)
    print(f"\ncoverage of the 95% breakpoint CI: {coverage:.1%}; threshold found: {found:.1%}")
    assert coverage >= 0.90
    assert found >= 0.80  # power: the simulated threshold is clear but not huge


def test_no_threshold_when_the_gain_is_constant_or_linear():
    constant = _no_threshold_rate(seed=7, slope=0.0)
    linear = _no_threshold_rate(seed=8, slope=0.06)
    print(f"\nno threshold on constant gains: {constant:.1%}; on linear gains: {linear:.1%}")
    assert constant >= 0.90
    assert linear >= 0.90


def test_coverage_check_fails_for_a_too_narrow_interval():
    coverage, _ = _threshold_runs(seed=20240601, level=0.5)
    assert coverage < 0.90
