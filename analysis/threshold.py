"""Capacity threshold: a hinge fit of gain on log10(capacity), its CI, and the model verdict.

For one family x train domain x evaluation domain x initialization, the per-seed gains
``y`` at capacities ``x = log10(capacity)`` are fitted by four models (see
:mod:`capstudy.analysis.hinge`): constant, linear, smooth (a saturating power law in
capacity) and hinge (flat plateau, then a line).

* Breakpoint: profile least squares (grid + bounded refinement), searched only where each
  arm keeps at least two distinct capacities (:func:`capstudy.analysis.hinge.arm_grid`).
* Its CI: a bootstrap-calibrated profile-likelihood interval. Replicates come from the seed
  bootstrap (seeds resampled within each variant, their small-sample adjusted deviations from
  the variant's mean gain added to the fitted hinge; :mod:`capstudy.analysis.bootstrap`), so
  the bootstrap world's breakpoint is exactly the estimate. On each replicate the likelihood
  ratio of that breakpoint against the replicate's best one is computed; the interval is every
  breakpoint whose likelihood ratio on the data is below the replicates' ``level`` quantile
  (the hull, if that set had gaps). Why not the plain percentile interval of refitted
  breakpoints: the breakpoint's sampling distribution is heavy-tailed, and on simulated
  studies (8 capacities, 2-5 seeds) percentile intervals covered the truth 89-92% of the time
  for a nominal 95%, this interval 92-95% at about the same width (see tests/analysis/
  test_validation.py). The plateau's CI is the percentile interval over the same replicates.
* Verdict: the hinge is compared with each no-threshold model (constant, line, smooth power
  law) by a parametric-bootstrap likelihood-ratio test. The usual chi-square reference does
  not apply, because the breakpoint is not identified under the null (Davies' problem);
  simulating the fitted null model and refitting both models gives the LR statistic's actual
  null distribution. "Threshold" needs the hinge to beat all three: an intersection-union
  test, whose p-value is the largest of the three (``p_threshold``). Across all threshold
  tests of a study the p-values are Benjamini-Hochberg adjusted (``p_threshold_adj``,
  :func:`fit_thresholds`) and a threshold is reported only where that is below ``alpha``.
  Otherwise "no threshold" and the best no-threshold model by AICc. AICc and BIC differences
  are reported as effect sizes ("by how much"). ``direction`` is +1 when the gain rises above
  the breakpoint, -1 when it falls, 0 without a threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from capstudy.analysis import hinge, intervals
from capstudy.analysis.bootstrap import percentile_interval, stratified_resample
from capstudy.analysis.gains import GROUP_KEYS

# Two distinct capacities on each arm of the hinge (see hinge.arm_grid) need at least four.
MIN_CAPACITIES = 4
MIN_OBSERVATIONS = 6
VERDICT_THRESHOLD = "threshold"
VERDICT_NONE = "no threshold"
VERDICT_INSUFFICIENT = "insufficient data"
NULL_MODELS = ("constant", "linear", "smooth")
# 99% point of chi-square with one degree of freedom: the confidence set of the smooth
# model's exponent over which its p-value is maximized. The 95% set (with four exponents)
# left the shared test at 7% false thresholds on full_grid-shaped studies with power-law
# gains (8 seeds, 100 studies); the 99% set with six exponents gave 4%, at 92% power
# instead of 95% under the default kink.
CHI2_1_99 = 6.6348966010212145
PLAUSIBLE_EXPONENTS = 6
# Parameters of each model including the residual SD (for AICc/BIC).
_K = {"constant": 2, "linear": 3, "smooth": 4, "hinge": 4}
# Columns that describe the threshold itself: left empty on rows without one.
THRESHOLD_ONLY = (
    "x0",
    "x0_lo",
    "x0_hi",
    "threshold",
    "threshold_lo",
    "threshold_hi",
    "plateau",
    "plateau_lo",
    "plateau_hi",
    "slope",
    "plateau_vanishes",
)
# Default equivalence margin of a plateau (metric units): within 0.02 of zero (two mAP
# points) the gain "vanishes". Overridable (``capstudy analyze --plateau-margin``).
PLATEAU_MARGIN = 0.02


def plateau_statement(lo: float, hi: float, tost_lo: float, tost_hi: float, margin: float) -> str:
    """Does the gain vanish below the breakpoint? Equivalence first, then a difference.

    ``vanishes``: two one-sided tests at level alpha put the plateau inside ``±margin`` (its
    ``1 - 2 alpha`` interval ``[tost_lo, tost_hi]`` lies within the margin); ``persists``:
    its interval ``[lo, hi]`` excludes zero and it is not equivalent to zero; otherwise
    ``undetermined`` (the data cannot tell a vanishing gain from a small one).
    """
    if -margin <= tost_lo and tost_hi <= margin:
        return "vanishes"
    if lo > 0 or hi < 0:
        return "persists"
    return "undetermined"


@dataclass(frozen=True)
class ThresholdFit:
    """Everything the report says about one threshold fit (breakpoints in log10 units)."""

    verdict: str
    best_model: str
    n_obs: int
    n_capacities: int
    direction: int = 0
    x0: float = float("nan")
    x0_lo: float = float("nan")
    x0_hi: float = float("nan")
    plateau: float = float("nan")
    plateau_lo: float = float("nan")
    plateau_hi: float = float("nan")
    slope: float = float("nan")
    plateau_vanishes: str = ""
    p_vs_constant: float = float("nan")
    p_vs_linear: float = float("nan")
    p_vs_smooth: float = float("nan")
    p_threshold: float = float("nan")
    aicc_constant: float = float("nan")
    aicc_linear: float = float("nan")
    aicc_smooth: float = float("nan")
    aicc_hinge: float = float("nan")
    bic_constant: float = float("nan")
    bic_linear: float = float("nan")
    bic_smooth: float = float("nan")
    bic_hinge: float = float("nan")
    linear_intercept: float = float("nan")
    linear_slope: float = float("nan")
    constant_level: float = float("nan")
    smooth_exponent: float = float("nan")
    smooth_level: float = float("nan")
    smooth_coef: float = float("nan")
    smooth_center: float = float("nan")

    def as_dict(self) -> dict:
        """Plain dict (for a DataFrame row)."""
        return asdict(self)

    @property
    def delta_aicc(self) -> float:
        """AICc of the best no-threshold model minus the hinge's (positive: hinge better)."""
        return min(self.aicc_constant, self.aicc_linear, self.aicc_smooth) - self.aicc_hinge


def null_fit(x: np.ndarray, y: np.ndarray, null: str) -> tuple[np.ndarray, float, int]:
    """Fitted values, RSS and residual degrees of freedom of a no-threshold model."""
    n = y.size
    if null == "constant":
        return np.full(n, y.mean()), float(hinge.rss_constant(y)[0]), n - 1
    if null == "linear":
        slope, intercept = np.polyfit(x, y, 1)
        return intercept + slope * x, float(hinge.rss_linear(x, y)[0]), n - 2
    beta, rss = hinge.best_power(x, y)
    return hinge.power_fitted(x, y, float(beta[0])), float(rss[0]), n - 3


def null_rss(x: np.ndarray, sims: np.ndarray, null: str) -> np.ndarray:
    """RSS of a no-threshold model for each row of ``sims`` (samples x observations)."""
    if null == "constant":
        return hinge.rss_constant(sims)
    if null == "linear":
        return hinge.rss_linear(x, sims)
    return hinge.best_power(x, sims)[1]


def lrt_pvalue(
    x: np.ndarray,
    y: np.ndarray,
    null: str,
    grid: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> float:
    """Parametric-bootstrap p-value of the hinge against a no-threshold ``null`` model.

    The null model (``constant``, ``linear`` or ``smooth``) is fitted, Gaussian data with its
    residual SD (unbiased) are simulated, and both models are refitted on each replicate. The
    LR statistic uses the grid-only hinge fit on both the data and the replicates, so they are
    computed the same way. The hinge need not nest the null (its breakpoint is kept off the
    end capacities), so the observed LR can be negative; the simulation calibrates it anyway.

    The smooth null has a nuisance parameter, its exponent, that the data pin down only
    loosely; a bootstrap from the best exponent alone was liberal (7% false thresholds at a
    nominal 5% on simulated power-law gains). Its p-value is therefore the largest over the
    exponents the data do not reject (:func:`plausible_exponents`), a Berger-Boos style
    supremum over a confidence set for the nuisance parameter.
    """
    n = y.size
    _, rss_h = hinge.best_breakpoints(x, y[None, :], grid)
    _, rss_best, _ = null_fit(x, y, null)
    lr_obs = _lr(rss_best, rss_h[0], n)
    p = 0.0
    for mu, rss0, dof in null_worlds(x, y, null):
        sigma = np.sqrt(rss0 / dof) if dof > 0 else 0.0
        sims = mu[None, :] + sigma * rng.standard_normal((n_boot, n))
        _, sim_rss_h = hinge.best_breakpoints(x, sims, grid)
        lr_sim = _lr(null_rss(x, sims, null), sim_rss_h, n)
        # Tolerance: on exactly linear/constant data both LRs are ~0 up to rounding.
        exceed = np.count_nonzero(lr_sim >= lr_obs - 1e-9)
        p = max(p, float((1 + exceed) / (n_boot + 1)))
    return p


def plausible_exponents(
    x: np.ndarray, y: np.ndarray, n_max: int = PLAUSIBLE_EXPONENTS
) -> np.ndarray:
    """Smooth-model exponents inside the 99% profile-likelihood set, at most ``n_max``.

    The set is every exponent whose likelihood ratio against the best one is below the
    chi-square(1) 99% point; the best exponent and up to ``n_max - 1`` others evenly spread
    over the set (in grid order) are returned.
    """
    betas = hinge.POWER_EXPONENTS
    rss = hinge._rss_one_regressor(hinge.power_regressor(x, betas), y[None, :])[0]
    lr = y.size * (np.log(np.maximum(rss, 1e-12)) - np.log(max(rss.min(), 1e-12)))
    inside = np.flatnonzero(lr <= CHI2_1_99)
    picks = inside[np.linspace(0, inside.size - 1, min(n_max - 1, inside.size)).round().astype(int)]
    return betas[np.unique(np.concatenate([[int(np.argmin(rss))], picks]))]


def null_worlds(x: np.ndarray, y: np.ndarray, null: str):
    """The fitted null models a bootstrap draws from: one, or one per plausible exponent."""
    if null != "smooth":
        return [null_fit(x, y, null)]
    worlds = []
    for beta in plausible_exponents(x, y):
        mu = hinge.power_fitted(x, y, float(beta))
        worlds.append((mu, float(((y - mu) ** 2).sum()), y.size - 3))
    return worlds


def _lr(rss_null: np.ndarray | float, rss_alt: np.ndarray | float, n: int) -> np.ndarray:
    floor = 1e-12
    return n * (np.log(np.maximum(rss_null, floor)) - np.log(np.maximum(rss_alt, floor)))


def find_threshold(
    x: np.ndarray,
    y: np.ndarray,
    strata: np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    level: float = 0.95,
    grid_points: int = hinge.DEFAULT_GRID_POINTS,
    plateau_margin: float = PLATEAU_MARGIN,
) -> ThresholdFit:
    """Fit the four models to per-seed gains and state the (unadjusted) verdict.

    Args:
        x: log10 capacity of each observation.
        y: gain of each observation (one per seed and variant).
        strata: the variant of each observation; seeds are resampled within it. Defaults
            to ``x``.
        n_boot: bootstrap replicates for the breakpoint CI and for each LR test.
        rng: random generator (seeded by the caller for reproducibility).
        alpha: test level of ``p_threshold`` (before any adjustment across tests).
        level: confidence level of the intervals.
        grid_points: breakpoint grid resolution.
        plateau_margin: equivalence margin of "the gain vanishes below the breakpoint".

    Returns:
        The fit, with verdict ``threshold``, ``no threshold`` or ``insufficient data``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    strata = x if strata is None else np.asarray(strata)[keep]
    rng = rng if rng is not None else np.random.default_rng(0)
    n, n_caps = y.size, np.unique(x).size
    if n_caps < MIN_CAPACITIES or n < MIN_OBSERVATIONS:
        return ThresholdFit(VERDICT_INSUFFICIENT, "", n, n_caps)

    grid = hinge.arm_grid(x, grid_points)
    fit = hinge.fit_hinge(x, y, grid)
    models = _compare_models(x, y, fit.rss)
    reps = stratified_resample(y, strata, n_boot, rng, center=fit.predict(x))
    x0_lo, x0_hi, x0_boot = _breakpoint_interval(x, y, reps, grid, fit, level)
    plateau_boot, _ = hinge.hinge_coefficients(x, reps, x0_boot)
    a_lo, a_hi = percentile_interval(plateau_boot, level)
    tost_lo, tost_hi = percentile_interval(plateau_boot, 1.0 - 2.0 * alpha)
    p = {null: lrt_pvalue(x, y, null, grid, n_boot, rng) for null in NULL_MODELS}
    p_threshold = max(p.values())
    found = p_threshold < alpha
    return ThresholdFit(
        verdict=VERDICT_THRESHOLD if found else VERDICT_NONE,
        best_model="hinge" if found else best_no_threshold(models),
        n_obs=n,
        n_capacities=n_caps,
        direction=int(np.sign(fit.b)) if found else 0,
        x0=fit.x0,
        x0_lo=x0_lo,
        x0_hi=x0_hi,
        plateau=fit.a,
        plateau_lo=a_lo,
        plateau_hi=a_hi,
        slope=fit.b,
        plateau_vanishes=plateau_statement(a_lo, a_hi, tost_lo, tost_hi, plateau_margin),
        p_vs_constant=p["constant"],
        p_vs_linear=p["linear"],
        p_vs_smooth=p["smooth"],
        p_threshold=p_threshold,
        **models,
    )


def best_no_threshold(models: dict) -> str:
    """The no-threshold model with the lowest AICc (ties go to the simpler one)."""
    return min(NULL_MODELS, key=lambda name: models[f"aicc_{name}"])


def _breakpoint_interval(
    x: np.ndarray,
    y: np.ndarray,
    reps: np.ndarray,
    grid: np.ndarray,
    fit: hinge.HingeFit,
    level: float,
) -> tuple[float, float, np.ndarray]:
    """Bootstrap-calibrated likelihood-ratio interval for the breakpoint (see module doc).

    Returns:
        ``(lo, hi, x0_boot)``: the interval and each replicate's grid-fitted breakpoint.
    """
    n = y.size
    rss_reps = hinge.profile_rss(x, reps, grid)
    x0_boot = grid[np.argmin(rss_reps, axis=1)]
    rss_true = hinge.profile_rss(x, reps, np.array([fit.x0]))[:, 0]
    lr_boot = _lr(rss_true, np.minimum(rss_reps.min(axis=1), rss_true), n)
    critical = float(np.quantile(lr_boot, level))
    lr_data = _lr(hinge.profile_rss(x, y, grid)[0], fit.rss, n)
    inside = grid[lr_data <= critical]
    lo = min(float(inside.min()), fit.x0) if inside.size else fit.x0
    hi = max(float(inside.max()), fit.x0) if inside.size else fit.x0
    return lo, hi, x0_boot


def _compare_models(x: np.ndarray, y: np.ndarray, rss_hinge: float) -> dict:
    """AICc/BIC of the four models, plus the no-threshold models' coefficients."""
    n = y.size
    slope, intercept = np.polyfit(x, y, 1)
    beta, rss_smooth = hinge.best_power(x, y)
    rss = {
        "constant": float(hinge.rss_constant(y)[0]),
        "linear": float(hinge.rss_linear(x, y)[0]),
        "smooth": float(rss_smooth[0]),
        "hinge": rss_hinge,
    }
    out = {"linear_intercept": float(intercept), "linear_slope": float(slope)}
    out["constant_level"] = float(y.mean())
    # The smooth curve is a + b * 10 ** (-beta * (x - center)): all four to redraw it.
    a, b = hinge.power_coefficients(x, y, float(beta[0]))
    out.update(smooth_exponent=float(beta[0]), smooth_level=a, smooth_coef=b)
    out["smooth_center"] = float(x.mean())
    for name, value in rss.items():
        aicc, bic = hinge.information_criteria(value, n, _K[name])
        out[f"aicc_{name}"], out[f"bic_{name}"] = aicc, bic
    return out


def fit_thresholds(
    per_seed: pd.DataFrame,
    capacity: str,
    *,
    n_boot: int,
    rng: np.random.Generator,
    alpha: float = 0.05,
    grid_points: int = hinge.DEFAULT_GRID_POINTS,
    plateau_margin: float = PLATEAU_MARGIN,
) -> pd.DataFrame:
    """Threshold fit for every family x train domain x evaluation domain x init.

    Args:
        per_seed: per-seed gains (:func:`capstudy.analysis.gains.paired_gains`).
        capacity: capacity column (``backbone_params``, ``detector_params`` or ``macs``).
        n_boot: bootstrap replicates.
        rng: random generator (one for the whole table, used in sorted group order).
        alpha: false discovery rate across the study's threshold tests.
        grid_points: breakpoint grid resolution (lower it for fast simulations).
        plateau_margin: equivalence margin of a vanishing plateau (metric units).

    Returns:
        One row per group: the :class:`ThresholdFit` fields, ``delta_aicc``, the
        breakpoint and its CI in capacity units (``threshold``, ``threshold_lo``,
        ``threshold_hi``), ``p_threshold_adj`` (Benjamini-Hochberg over all groups that
        could be tested) and ``n_threshold_tests``. The verdict is decided on the adjusted
        p-value; rows without a threshold leave every THRESHOLD_ONLY column empty.
    """
    rows = []
    for group, part in per_seed.groupby(GROUP_KEYS, sort=True):
        cap = part[capacity].to_numpy(dtype=float)
        valid = np.isfinite(cap) & (cap > 0)
        fit = find_threshold(
            np.log10(cap[valid]),
            part["gain"].to_numpy(dtype=float)[valid],
            part["variant_key"].to_numpy()[valid],
            n_boot=n_boot,
            rng=rng,
            alpha=alpha,
            grid_points=grid_points,
            plateau_margin=plateau_margin,
        )
        row = dict(zip(GROUP_KEYS, group, strict=True))
        row.update(capacity=capacity, **fit.as_dict(), delta_aicc=fit.delta_aicc)
        for suffix in ("", "_lo", "_hi"):
            row[f"threshold{suffix}"] = float(10 ** row[f"x0{suffix}"])
        rows.append(row)
    fits = pd.DataFrame(rows)
    return adjust_verdicts(fits, alpha) if not fits.empty else fits


def adjust_verdicts(fits: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Benjamini-Hochberg across the study's threshold tests; verdicts on adjusted p.

    A row keeps ``threshold`` only if its adjusted p is below ``alpha``; otherwise it becomes
    ``no threshold`` with its best no-threshold model, direction 0 and empty threshold columns.
    """
    fits = fits.copy()
    fits["p_threshold_adj"] = intervals.benjamini_hochberg(fits["p_threshold"].to_numpy())
    fits["n_threshold_tests"] = int(fits["p_threshold"].notna().sum())
    found = (fits["verdict"] == VERDICT_THRESHOLD) & (fits["p_threshold_adj"] < alpha)
    demoted = (fits["verdict"] == VERDICT_THRESHOLD) & ~found
    fits.loc[demoted, "verdict"] = VERDICT_NONE
    for i in fits.index[demoted]:
        fits.loc[i, "best_model"] = best_no_threshold(fits.loc[i].to_dict())
    fits.loc[~found, "direction"] = 0
    fits.loc[~found, list(THRESHOLD_ONLY)] = np.nan
    return fits
