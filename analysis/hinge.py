"""Least-squares fits of the competing gain-vs-capacity models, vectorized over samples.

Models of gain ``y`` on ``x = log10(capacity)``:

* constant: ``y = a``
* linear:   ``y = a + b x``
* smooth:   ``y = a + b * C ** (-beta)`` with ``C = 10 ** x`` and ``beta`` of either sign: a
  power law in capacity. ``beta > 0`` saturates at ``a`` (concave growth); ``beta < 0``
  grows as ``C ** |beta|`` (convex in log capacity: the smooth growth transfer scaling laws
  predict, with no capacity where the gain vanishes). ``b`` takes either sign, so it rises
  or falls; as ``beta -> 0`` it becomes the line.
* hinge:    ``y = a + b * max(0, x - x0)``: flat at the plateau ``a`` below the breakpoint
  ``x0``, a straight line of slope ``b`` above it (continuous at ``x0``).

Why a free plateau ``a`` rather than a left arm fixed at zero: the study's hypothesis is
"below a capacity threshold the gain vanishes", but pretraining can also *hurt* small models
a little (a plateau below zero) or keep a small constant benefit. Forcing ``a = 0`` would then
bend the breakpoint to absorb that offset. With ``a`` free the breakpoint answers only "where
does the gain start to change with capacity", and "does it vanish below" is answered
separately by the plateau's confidence interval.

Over the full range ``[min(x), max(x)]`` (:func:`breakpoint_grid`) the hinge nests the line
(``x0 = min(x)``) and the constant (``x0 = max(x)``). The threshold verdict searches only
:func:`arm_grid`, which keeps two capacities on each arm; there the hinge no longer nests
them, so its likelihood ratios can be negative and are calibrated by simulation
(:mod:`capstudy.analysis.threshold`).

All functions take ``Y`` as a (samples, observations) array so that bootstrap and
simulation replicates are fitted in one numpy expression instead of a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

# Grid resolution for the breakpoint: 241 points over a 2.5-decade capacity range is
# ~0.01 decade (2%) per step, far below any breakpoint CI seen in practice.
DEFAULT_GRID_POINTS = 241
# Power-law exponents searched for the smooth model, of either sign: |beta| from 0.01
# (practically the line) to 2 (the whole change within about a decade of capacity). The
# regressor is C ** -beta, so with its free coefficient b a positive beta gives curves that
# saturate (concave in log capacity when rising) and a negative beta curves that accelerate
# (gain ~ C ** |beta|, convex in log capacity: smooth growth as transfer scaling laws
# predict, with no capacity where it vanishes). Reported scaling-law exponents lie well
# inside (about 0.05 to 1). Log-spaced, as exponents act multiplicatively.
_MAGNITUDES = np.geomspace(0.01, 2.0, 60)
POWER_EXPONENTS = np.concatenate([-_MAGNITUDES[::-1], _MAGNITUDES])
# Relative floor on a residual sum of squares so that noiseless data (RSS = 0) give finite
# log-likelihoods instead of -inf.
_RSS_FLOOR = 1e-12


@dataclass(frozen=True)
class HingeFit:
    """A fitted hinge: plateau ``a``, slope ``b`` above the breakpoint ``x0``, and its RSS."""

    x0: float
    a: float
    b: float
    rss: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fitted gain at ``x`` (log10 capacity)."""
        return self.a + self.b * np.maximum(0.0, np.asarray(x, dtype=float) - self.x0)


def breakpoint_grid(x: np.ndarray, n_points: int = DEFAULT_GRID_POINTS) -> np.ndarray:
    """Evenly spaced candidate breakpoints spanning the observed capacities."""
    return np.linspace(float(np.min(x)), float(np.max(x)), n_points)


def arm_grid(x: np.ndarray, n_points: int = DEFAULT_GRID_POINTS) -> np.ndarray:
    """Candidate breakpoints that leave at least two distinct capacities on each arm.

    With distinct capacities ``c1 < c2 < ... < cm``, ``x0`` runs over ``[c2, c(m-2)]``. The
    flat arm then holds ``c1`` and ``c2`` at least (a capacity at the kink is fitted at the
    plateau, so it counts for the flat arm); the sloped arm holds ``c(m-1)`` and ``cm``
    strictly above the kink. Letting ``x0`` reach ``c(m-1)`` would leave ``c(m-1)`` at the
    kink, saying nothing about the slope: a "threshold" made of the single largest
    capacity. Needs ``m >= 4`` (then the one candidate is ``c2``).
    """
    caps = np.unique(np.asarray(x, dtype=float))
    return np.linspace(caps[1], caps[-3], n_points)


def _as_2d(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return y[None, :] if y.ndim == 1 else y


def rss_constant(y: np.ndarray) -> np.ndarray:
    """RSS of the constant model for each row of ``y`` (samples x observations)."""
    y = _as_2d(y)
    return ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)


def rss_linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """RSS of the straight line ``a + b x`` for each row of ``y``."""
    return _rss_one_regressor(np.asarray(x, dtype=float)[None, :], _as_2d(y))[:, 0]


def profile_rss(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Hinge RSS for every row of ``y`` and every candidate breakpoint: (samples, grid)."""
    z = np.maximum(0.0, np.asarray(x, dtype=float)[None, :] - np.asarray(grid)[:, None])
    return _rss_one_regressor(z, _as_2d(y))


def _rss_one_regressor(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """RSS of ``y ~ 1 + z`` for each regressor row of ``z`` (G, n) and sample row of ``y``.

    Simple regression in closed form: RSS = Syy - Szy^2 / Szz. A regressor with no spread
    (the hinge with its breakpoint at the largest capacity) reduces to the constant model.
    """
    zc = z - z.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    szz = (zc**2).sum(axis=1)
    syy = (yc**2).sum(axis=1)
    szy = yc @ zc.T
    explained = np.divide(szy**2, szz, out=np.zeros_like(szy), where=szz > 1e-12)
    return np.maximum(syy[:, None] - explained, 0.0)


def power_regressor(x: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """``C ** -beta`` for each exponent (rows) and observation (columns), centered in x.

    Centering at the mean log capacity only rescales ``b`` and keeps the values near 1.
    """
    x = np.asarray(x, dtype=float)
    return 10.0 ** (-np.asarray(betas)[:, None] * (x - x.mean())[None, :])


def best_power(x: np.ndarray, y: np.ndarray, betas: np.ndarray = POWER_EXPONENTS) -> tuple:
    """Smooth (power-law, either curvature) fit over the exponent grid: ``(beta, rss)``."""
    rss = _rss_one_regressor(power_regressor(x, betas), _as_2d(y))
    idx = np.argmin(rss, axis=1)
    return np.asarray(betas)[idx], rss[np.arange(rss.shape[0]), idx]


def power_coefficients(x: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, float]:
    """``(a, b)`` of the smooth model ``a + b * 10 ** (-beta * (x - mean(x)))``."""
    z = power_regressor(x, np.array([beta]))[0]
    b, a = np.polyfit(z, np.asarray(y, dtype=float), 1)
    return float(a), float(b)


def power_fitted(x: np.ndarray, y: np.ndarray, beta: float) -> np.ndarray:
    """Fitted values of the smooth model with exponent ``beta`` (y one-dimensional)."""
    a, b = power_coefficients(x, y, beta)
    return a + b * power_regressor(x, np.array([beta]))[0]


def hinge_coefficients(x: np.ndarray, y: np.ndarray, x0: np.ndarray) -> tuple:
    """Plateau ``a`` and slope ``b`` of the hinge at breakpoint(s) ``x0``, one per row of y.

    Args:
        x: log10 capacities, shape (n,).
        y: gains, shape (n,) or (samples, n).
        x0: breakpoints, scalar or shape (samples,).

    Returns:
        ``(a, b)`` arrays of shape (samples,).
    """
    y = _as_2d(y)
    x0 = np.broadcast_to(np.asarray(x0, dtype=float), (y.shape[0],))
    z = np.maximum(0.0, np.asarray(x, dtype=float)[None, :] - x0[:, None])
    zc = z - z.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    szz = (zc**2).sum(axis=1)
    b = np.divide((zc * yc).sum(axis=1), szz, out=np.zeros_like(szz), where=szz > 1e-12)
    a = y.mean(axis=1) - b * z.mean(axis=1)
    return a, b


def fit_hinge(x: np.ndarray, y: np.ndarray, grid: np.ndarray | None = None) -> HingeFit:
    """Profile least squares for the breakpoint: grid search, then bounded refinement.

    The RSS is minimized over the grid; the best grid point's two neighbouring cells are then
    searched with Brent's bounded method, because the exact minimum usually lies between grid
    points (the profile is smooth between observed capacities).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    grid = breakpoint_grid(x) if grid is None else grid
    rss = profile_rss(x, y, grid)[0]
    best = int(np.argmin(rss))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    x0, best_rss = float(grid[best]), float(rss[best])
    if hi > lo:
        res = minimize_scalar(
            lambda t: float(profile_rss(x, y, np.array([t]))[0, 0]),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-6},
        )
        if res.fun < best_rss:
            x0, best_rss = float(res.x), float(res.fun)
    a, b = hinge_coefficients(x, y, x0)
    return HingeFit(x0=x0, a=float(a[0]), b=float(b[0]), rss=best_rss)


def best_breakpoints(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> tuple:
    """Grid-only profile fit for many samples at once: (x0, rss), each of shape (samples,)."""
    rss = profile_rss(x, y, grid)
    idx = np.argmin(rss, axis=1)
    return grid[idx], rss[np.arange(rss.shape[0]), idx]


def gaussian_loglik(rss: np.ndarray | float, n: int) -> np.ndarray:
    """Maximized Gaussian log-likelihood of a least-squares fit with ``n`` observations."""
    rss = np.maximum(np.asarray(rss, dtype=float), _RSS_FLOOR)
    return -0.5 * n * (np.log(2.0 * np.pi * rss / n) + 1.0)


def information_criteria(rss: float, n: int, k: int) -> tuple[float, float]:
    """AICc and BIC of a least-squares fit with ``k`` parameters (including the noise SD).

    AICc is infinite when ``n <= k + 1`` (too few observations to penalize sensibly).
    """
    ll = float(gaussian_loglik(rss, n))
    aic = -2.0 * ll + 2.0 * k
    aicc = aic + (2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else np.inf)
    bic = -2.0 * ll + k * np.log(n)
    return aicc, bic
