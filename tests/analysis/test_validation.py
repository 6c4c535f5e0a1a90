"""Statistical validation of the threshold analysis on simulated studies with a known truth.

Settings mirror a small real study: the 8 ultrasmall capacities (17 k - 3.6 M backbone
parameters), 3 seeds, run-to-run SD 0.015 of mAP50, and a true gain flat at zero below 100 k
parameters rising by 0.1 mAP50 per tenfold capacity above. Seeds are fixed, so the numbers are
reproducible; they are printed (``pytest -s``) for docs/methods/statistics.md.

Nominal level is 95%; the requirements are >= 90% coverage and >= 90% "no threshold" on data
without one. The coverage checks have teeth: the same harness with a 50% breakpoint interval,
or with a normal-quantile gain interval, must fail them.

Gain intervals (issue 9): >= 90% coverage with 2 seeds and >= 93% with 3, with Gaussian and
with heavy-tailed run noise; on pure noise, Holm across capacities names a "significant"
capacity in about 5% of comparisons.
"""

from __future__ import annotations

import numpy as np

from capstudy.analysis.intervals import holm, t_intervals
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


# --- gain confidence intervals (issue 9): coverage at the seed counts studies use ---------
GAIN_REPS = 20_000
SEED_SD = 0.015  # run-to-run SD of one run's mAP50, as above


def _gain_ci_coverage(seed: int, n_seeds: int, noise: str = "normal", level=0.95) -> float:
    """Share of simulated variants whose gain interval covers the true gain.

    Each replicate is one variant: ``n_seeds`` random-init runs and ``n_seeds`` pretrained
    runs of the same seeds, each with independent run noise, paired into gains; the true gain
    is 0.04. ``noise="t3"`` draws heavy-tailed run noise (Student t, 3 df, same SD).
    """
    rng = np.random.default_rng(seed)
    shape = (GAIN_REPS, n_seeds)
    if noise == "normal":
        runs = rng.standard_normal((2, *shape))
    else:
        runs = rng.standard_t(3, size=(2, *shape)) / np.sqrt(3.0)
    true_gain = 0.04
    gains = true_gain + SEED_SD * (runs[1] - runs[0])
    if level == "z":  # a normal-quantile interval: what ignoring the t correction gives
        se = gains.std(axis=1, ddof=1) / np.sqrt(n_seeds)
        lo, hi = gains.mean(axis=1) - 1.96 * se, gains.mean(axis=1) + 1.96 * se
    else:
        lo, hi, _ = t_intervals(gains, level)
    return float(np.mean((lo <= true_gain) & (true_gain <= hi)))


def test_gain_ci_covers_at_two_and_three_seeds():
    rows = {
        n: (_gain_ci_coverage(10 + n, n), _gain_ci_coverage(20 + n, n, "t3")) for n in (2, 3, 5)
    }
    for n, (normal, heavy) in rows.items():
        print(f"\n{n} seeds: 95% gain CI coverage {normal:.1%} (Gaussian), {heavy:.1%} (t3)")
    assert rows[2][0] >= 0.90 and rows[3][0] >= 0.93 and rows[5][0] >= 0.93
    # Heavy-tailed run noise: the t interval stays conservative-to-nominal.
    assert rows[2][1] >= 0.90 and rows[3][1] >= 0.93


def test_gain_coverage_check_fails_for_a_normal_quantile_interval():
    assert _gain_ci_coverage(31, 2, level="z") < 0.90  # ~70%: the check has teeth
    assert _gain_ci_coverage(32, 3, level="z") < 0.93


def test_pure_noise_names_no_significant_capacity_beyond_the_error_rate():
    """Holm across the 8 capacities keeps "some capacity is significant" at <= 5% per comparison."""
    rng = np.random.default_rng(77)
    named = 0
    reps = 300
    for _ in range(reps):
        x, y, strata = simulate_gain_arrays(rng, x0=None, plateau=0.0, slope=0.0)
        by_variant = np.stack([y[strata == k] for k in np.unique(strata)])
        _, _, p = t_intervals(by_variant)
        named += bool((holm(p) < 0.05).any())
    print(f"\npure noise, 8 capacities x 3 seeds: some capacity significant in {named / reps:.1%}")
    assert named / reps <= 0.08  # 5% nominal; 300 replicates leave ~1.3% of binomial SD
