"""Bootstrap resampling over seeds, vectorized with numpy.

The breakpoint and plateau CIs resample *seeds*: the independent replicate in a capacity
study is one training run, so seeds are the unit of uncertainty. Each variant is a stratum;
seeds are drawn with replacement within it (a stratified / cluster bootstrap), which keeps
the capacities, and so the regression design, fixed across replicates. (Gain CIs of single
variants are t intervals instead: :mod:`capstudy.analysis.intervals` says why.)

Small-sample correction: with n seeds, the plain bootstrap's variance of a mean is
(n-1)/n times the usual unbiased estimate, so with the 2-5 seeds typical here its intervals are
too narrow (a 3-seed bootstrap under-covers badly). Each resampled deviation from the stratum
mean is therefore inflated by sqrt(n/(n-1)) (the "adjusted residuals" of Davison & Hinkley,
Bootstrap Methods, 1997, §3.3), which makes the bootstrap variance of the stratum mean equal
s^2/n. Intervals are percentile intervals of the replicates.
"""

from __future__ import annotations

import numpy as np


def adjusted_stratum_draws(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Resample one stratum's values with replacement, deviations inflated by sqrt(n/(n-1)).

    Args:
        values: the stratum's observations (one per seed), shape (n,).
        n_boot: number of bootstrap replicates.
        rng: random generator.

    Returns:
        Array (n_boot, n). With n == 1 there is no seed variation to resample, and the
        single value is returned unchanged in every replicate.
    """
    values = np.asarray(values, dtype=float)
    n = values.size
    if n < 2:
        return np.repeat(values[None, :], n_boot, axis=0)
    center = values.mean()
    draws = values[rng.integers(0, n, size=(n_boot, n))]
    return center + np.sqrt(n / (n - 1.0)) * (draws - center)


def stratified_resample(
    y: np.ndarray,
    strata: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    center: np.ndarray | None = None,
) -> np.ndarray:
    """Seed bootstrap within each stratum (capacity): replicates of ``y``, shape (n_boot, n).

    Observation ``i`` of every replicate comes from the same stratum as ``y[i]``, so any
    design built from the strata (capacities) stays valid for all replicates.

    Args:
        y: observations (one per seed and stratum).
        strata: stratum label of each observation.
        n_boot: number of replicates.
        rng: random generator.
        center: optional fitted value of each observation. When given, the resampled
            (adjusted) deviations from each stratum's mean are added to it instead of to the
            stratum mean: a model-based bootstrap whose "true" curve is the fitted model,
            with noise that is purely seed-to-seed variation.
    """
    y = np.asarray(y, dtype=float)
    strata = np.asarray(strata)
    out = np.empty((n_boot, y.size))
    for value in np.unique(strata):
        idx = np.flatnonzero(strata == value)
        draws = adjusted_stratum_draws(y[idx], n_boot, rng)
        if center is not None:
            draws = draws - y[idx].mean() + np.asarray(center, dtype=float)[idx]
        out[:, idx] = draws
    return out


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of bootstrap replicates."""
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(np.asarray(samples, dtype=float), [tail, 100.0 - tail])
    return float(lo), float(hi)
