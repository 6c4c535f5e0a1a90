"""One threshold for the whole study: a breakpoint shared by every comparison.

The paper's answer is one capacity, pooled over families and domains. The shared model
gives every comparison ``j`` (family x train domain x eval domain x pretrained init) its own
plateau ``a_j``, slope ``b_j`` and noise level ``sigma_j`` around one breakpoint ``x0`` in
log10 capacity::

    gain_j = a_j + b_j * max(0, x - x0) + noise_j,   noise_j ~ N(0, sigma_j^2)

With each ``sigma_j`` profiled out, the log-likelihood of ``x0`` is
``-1/2 sum_j n_j log RSS_j(x0)`` (each comparison's hinge RSS at that breakpoint), maximized
over a grid common to all comparisons (:func:`shared_grid`).

Uncertainty comes from a *joint* bootstrap of runs (:mod:`capstudy.analysis.joint`): a
resampled seed of a variant carries every evaluation domain and both pretrained inits (one
run is scored on every domain, and one random-init run is the baseline of every pretrained
init), so the comparisons' dependence is kept, not assumed away.

* Test: the shared hinge against each pooled no-threshold model (every comparison its own
  constant, its own line, or its own power law ``a + b C^beta`` with ``beta`` of either sign),
  by likelihood ratio calibrated on joint-bootstrap replicates of the fitted null; "threshold"
  needs the hinge to beat all three (the largest p-value, an intersection-union test).
* Interval: every breakpoint whose profile likelihood ratio is below the ``level`` quantile
  of the same statistic on replicates of the fitted shared hinge (as the per-comparison fit
  does, :mod:`capstudy.analysis.threshold`).
* Plateau: the comparisons' mean plateau, its interval from those replicates, and whether the
  gain *vanishes* below the breakpoint: equivalence to zero within ``plateau_margin`` by two
  one-sided tests (the ``1 - 2 alpha`` interval inside the margin).
* Is pooling honest: the breakpoint fitted separately to the comparisons of each family,
  train domain and eval domain, each pair's difference in decades with an interval from the
  same replicates, stated against an equivalence margin (:func:`contrasts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from capstudy.analysis import hinge, joint
from capstudy.analysis.threshold import (
    MIN_CAPACITIES,
    MIN_OBSERVATIONS,
    NULL_MODELS,
    VERDICT_INSUFFICIENT,
    VERDICT_NONE,
    VERDICT_THRESHOLD,
    null_rss,
    null_worlds,
    plateau_statement,
)

# Default equivalence margins: breakpoints within 0.3 decade (a factor of 2) are "the same
# threshold" (a step of the ultrasmall ladder is a factor of ~2.15); a plateau within 0.02 of
# zero (two mAP points) is "no gain".
DECADE_MARGIN = 0.3
PLATEAU_MARGIN = 0.02
CONTRAST_FACTORS = ("family", "train_domain", "eval_domain")
_FLOOR = 1e-12


@dataclass(frozen=True)
class SharedOptions:
    """How the shared threshold is tested and reported."""

    n_boot: int = 1000
    alpha: float = 0.05
    level: float = 0.95
    grid_points: int = hinge.DEFAULT_GRID_POINTS
    plateau_margin: float = PLATEAU_MARGIN
    decade_margin: float = DECADE_MARGIN


def shared_grid(data: joint.JointData, n_points: int) -> np.ndarray:
    """Breakpoints from the lowest to the highest any comparison can place on its arms."""
    lo = min(float(np.unique(c.x)[1]) for c in data.comparisons)
    hi = max(float(np.unique(c.x)[-3]) for c in data.comparisons)
    return np.linspace(lo, hi, n_points)


def _neg2ll(data: joint.JointData, ys: list[np.ndarray], grid: np.ndarray, members=None):
    """``sum_j n_j log RSS_j(x0)``: -2 x profile log-likelihood (+ const), (samples, grid)."""
    members = range(len(data.comparisons)) if members is None else members
    total = 0.0
    for j in members:
        rss = hinge.profile_rss(data.comparisons[j].x, ys[j], grid)
        total = total + data.comparisons[j].x.size * np.log(np.maximum(rss, _FLOOR))
    return total


def _null_neg2ll(data: joint.JointData, ys: list[np.ndarray], null: str) -> np.ndarray:
    total = 0.0
    for comp, y in zip(data.comparisons, ys):
        total = total + comp.x.size * np.log(np.maximum(null_rss(comp.x, y, null), _FLOOR))
    return total


def _lr_pvalue(data, grid, null: str, n_boot: int, rng) -> tuple[float, float]:
    """Joint-bootstrap p-value of the shared hinge against the pooled ``null``: (LR, p).

    For the smooth null, as for one comparison, the largest p over worlds built from each
    comparison's plausible exponents (:func:`capstudy.analysis.threshold.null_worlds`).
    """
    ys = [c.y for c in data.comparisons]
    lr_obs = float(_null_neg2ll(data, ys, null)[0] - _neg2ll(data, ys, grid).min())
    options = [[mu for mu, _, _ in null_worlds(c.x, c.y, null)] for c in data.comparisons]
    p = 0.0
    for k in range(max(len(o) for o in options)):
        centers = [o[min(k, len(o) - 1)] for o in options]
        reps = joint.resample(data, centers, n_boot, rng)
        lr_sim = _null_neg2ll(data, reps, null) - _neg2ll(data, reps, grid).min(axis=1)
        # Tolerance: on exactly null data both statistics are ~0 up to rounding.
        p = max(p, float((1 + np.count_nonzero(lr_sim >= lr_obs - 1e-9)) / (n_boot + 1)))
    return lr_obs, p


def _plateaus(data, ys, x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each comparison's plateau and slope at breakpoint(s) ``x0``: (comparisons, samples)."""
    fits = [hinge.hinge_coefficients(c.x, y, x0) for c, y in zip(data.comparisons, ys)]
    return np.array([a for a, _ in fits]), np.array([b for _, b in fits])


def _interval(data, grid, profile, best, reps, level) -> tuple[float, float, np.ndarray]:
    """Bootstrap-calibrated profile-likelihood interval of the shared breakpoint."""
    rep_profile = _neg2ll(data, reps, grid)
    at_truth = _neg2ll(data, reps, np.array([grid[best]]))[:, 0]
    critical = float(np.quantile(at_truth - rep_profile.min(axis=1), level))
    inside = grid[profile - profile[best] <= critical]
    return float(inside.min()), float(inside.max()), grid[np.argmin(rep_profile, axis=1)]


def fit_shared(per_seed: pd.DataFrame, capacity: str, rng, options: SharedOptions) -> dict:
    """The study's shared threshold: one row of ``tables/pooled.csv`` (see module doc).

    Args:
        per_seed: per-seed gains (:func:`capstudy.analysis.gains.paired_gains`).
        capacity: capacity column.
        rng: random generator.
        options: test level, replicates, grid and margins.

    Returns:
        A dict: verdict, threshold and its CI (capacity units, and ``x0*`` in log10), p and
        each null's p, comparisons used, direction, the plateau summary and its wording,
        the best pooled no-threshold model; plus ``contrasts``, a DataFrame (not a column).
    """
    data = joint.prepare(per_seed, capacity, MIN_CAPACITIES, MIN_OBSERVATIONS)
    row: dict = {"comparisons": len(data.comparisons), "capacity": capacity}
    if not data.comparisons:
        return {**row, "verdict": VERDICT_INSUFFICIENT, "contrasts": pd.DataFrame()}
    grid = shared_grid(data, options.grid_points)
    ys = [c.y for c in data.comparisons]
    profile = _neg2ll(data, ys, grid)[0]
    best = int(np.argmin(profile))
    x0 = float(grid[best])
    p_null = {}
    for null in NULL_MODELS:
        row[f"lr_vs_{null}"], p_null[null] = _lr_pvalue(data, grid, null, options.n_boot, rng)
        row[f"p_vs_{null}"] = p_null[null]
    p = max(p_null.values())
    found = p < options.alpha
    a, b = _plateaus(data, ys, np.array([x0]))
    hinges = _hinges(data, a[:, 0], b[:, 0], x0)
    centers = [h.predict(c.x) for h, c in zip(hinges, data.comparisons)]
    reps = joint.resample(data, centers, options.n_boot, rng)
    lo, hi, x0_boot = _interval(data, grid, profile, best, reps, options.level)
    a_boot, _ = _plateaus(data, reps, x0_boot)
    plateau_boot = a_boot.mean(axis=0)
    row.update(
        verdict=VERDICT_THRESHOLD if found else VERDICT_NONE,
        p=p,
        x0=x0,
        x0_lo=lo,
        x0_hi=hi,
        threshold=10**x0,
        threshold_lo=10**lo,
        threshold_hi=10**hi,
        direction=int(np.sign(b.mean())) if found else 0,
        slope_mean=float(b.mean()),
        best_model="hinge" if found else _best_pooled_null(data),
        **_plateau_summary(float(a.mean()), plateau_boot, options),
        n_boot=options.n_boot,
        used=";".join(" | ".join(map(str, c.key)) for c in data.comparisons),
    )
    row["contrasts"] = contrasts(data, grid, reps, ys, options)
    return row


def _hinges(data, a, b, x0):
    return [hinge.HingeFit(x0=x0, a=float(aj), b=float(bj), rss=np.nan) for aj, bj in zip(a, b)]


def _best_pooled_null(data: joint.JointData) -> str:
    """The pooled no-threshold model with the lowest summed AICc."""
    total = dict.fromkeys(NULL_MODELS, 0.0)
    k = {"constant": 2, "linear": 3, "smooth": 4}
    for c in data.comparisons:
        for null in NULL_MODELS:
            rss = float(null_rss(c.x, c.y[None, :], null)[0])
            total[null] += hinge.information_criteria(rss, c.x.size, k[null])[0]
    return min(NULL_MODELS, key=lambda name: total[name])


def _plateau_summary(plateau: float, boot: np.ndarray, options: SharedOptions) -> dict:
    lo, hi = np.quantile(boot, [(1 - options.level) / 2, (1 + options.level) / 2])
    tost_lo, tost_hi = np.quantile(boot, [options.alpha, 1 - options.alpha])
    return {
        "plateau": plateau,
        "plateau_lo": float(lo),
        "plateau_hi": float(hi),
        "plateau_margin": options.plateau_margin,
        "plateau_vanishes": plateau_statement(
            float(lo), float(hi), float(tost_lo), float(tost_hi), options.plateau_margin
        ),
    }


def contrasts(data, grid, reps, ys, options: SharedOptions) -> pd.DataFrame:
    """Breakpoint differences between the levels of each factor, against a margin.

    For each factor with two or more levels among the comparisons used, the breakpoint is
    fitted to each level's comparisons alone. Whether they differ at all is one likelihood
    ratio test per factor (a breakpoint per level against the shared one), calibrated on the
    joint-bootstrap replicates of the shared fit, where the levels share it by construction
    (``p_differs``, Bonferroni-adjusted across the factors tested). Each pair's difference
    (decades) gets a basic bootstrap interval from the same replicates, Bonferroni-widened
    across the factor's pairs. A pair "differs" only
    when its factor's test rejects at ``alpha`` and its interval excludes zero; it is
    "shared within ±m decade" when its interval lies inside the margin; else "undetermined".
    (Intervals alone said "differs" in 7-12% of simulated full_grid-shaped studies whose
    breakpoint was shared, 3 seeds; the test without the adjustment still in 2-9% per factor.)

    Returns:
        Columns factor, level_a, level_b, difference, lo, hi, margin, p_differs, statement.
    """
    rows = []
    shared_data = float(_neg2ll(data, ys, grid)[0].min())
    shared_reps = _neg2ll(data, reps, grid).min(axis=1)
    for f_index, factor in enumerate(CONTRAST_FACTORS):
        levels = sorted({c.key[f_index] for c in data.comparisons})
        if len(levels) < 2:
            continue
        fitted, boot, split_data, split_reps = {}, {}, 0.0, 0.0
        for level in levels:
            members = [j for j, c in enumerate(data.comparisons) if c.key[f_index] == level]
            on_data = _neg2ll(data, ys, grid, members)[0]
            on_reps = _neg2ll(data, reps, grid, members)
            fitted[level], boot[level] = grid[np.argmin(on_data)], grid[np.argmin(on_reps, 1)]
            split_data, split_reps = split_data + on_data.min(), split_reps + on_reps.min(1)
        lr, lr_reps = shared_data - split_data, shared_reps - split_reps
        p = float((1 + np.count_nonzero(lr_reps >= lr - 1e-9)) / (lr_reps.size + 1))
        tail = (1 - options.level) / (len(levels) * (len(levels) - 1))
        for i, la in enumerate(levels):
            for lb in levels[i + 1 :]:
                diff = float(fitted[la] - fitted[lb])
                q_lo, q_hi = np.quantile(boot[la] - boot[lb], [tail, 1 - tail])
                lo, hi = diff - float(q_hi), diff - float(q_lo)
                rows.append(
                    {
                        "factor": factor,
                        "level_a": la,
                        "level_b": lb,
                        "difference": diff,
                        "lo": lo,
                        "hi": hi,
                        "margin": options.decade_margin,
                        "p_differs": p,
                        "statement": decade_statement(lo, hi, options.decade_margin),
                    }
                )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    # Bonferroni across the factors tested (up to three tests per study).
    table["p_differs"] = np.minimum(1.0, table["p_differs"] * table["factor"].nunique())
    weak = (table["statement"] == "differs") & (table["p_differs"] >= options.alpha)
    table.loc[weak, "statement"] = "undetermined"
    return table


def decade_statement(lo: float, hi: float, margin: float) -> str:
    """Equivalence wording of a breakpoint difference's interval (decades)."""
    if -margin <= lo and hi <= margin:
        return f"shared within ±{margin:g} decade"
    if lo > 0 or hi < 0:
        return "differs"
    return "undetermined"


def factor_summary(table: pd.DataFrame) -> dict[str, str]:
    """Per factor, one statement over its pairs: differs if any pair does, shared if all are."""
    out = {}
    for factor, part in table.groupby("factor", sort=False) if not table.empty else []:
        statements = set(part["statement"])
        if "differs" in statements:
            out[factor] = "differs"
        elif all(s.startswith("shared") for s in statements):
            out[factor] = part["statement"].iloc[0]
        else:
            out[factor] = "undetermined"
    return out
