"""Group-sequential boundaries for the shared-threshold test: seeds until the answer is decided.

A sequential study runs its seeds in planned looks (cumulative seed counts ``n_1 < … < n_K``).
After look ``k`` the shared-threshold test (:mod:`capstudy.analysis.shared`) gives a p-value
``p_k`` on all seeds so far; its statistic is ``Z_k = Phi^-1(1 - p_k)``.

* **Efficacy**: stop and say "threshold" when ``p_k <= c_k``. The boundaries spend the
  study's ``alpha`` across looks by a Lan-DeMets spending function of the information
  fraction ``t_k = n_k / n_K`` (seeds: each adds the same information): O'Brien-Fleming type
  ``alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t))`` (almost nothing early, nearly all of
  ``alpha`` left for the last look), or Pocock type ``alpha ln(1 + (e - 1) t)``. ``c_k`` is
  set so that the chance of crossing by look ``k`` under the null is ``alpha(t_k)``,
  computed on the joint null of ``(Z_1, …, Z_K)``: normal with the correlation the statistic
  has across looks *under the study's own grid*, estimated by simulating no-threshold studies
  through the real analysis (:mod:`capstudy.analysis.power_seq`) — the shared test's
  p-value is a maximum over nulls and bootstrap-calibrated, so the textbook
  ``sqrt(n_j / n_k)`` is checked, not assumed (both are recorded).
* **Futility** (non-binding): an interim look stops with "no threshold" when
  ``p_k >= futility`` (0.5: the statistic is below its null median, Wieand's rule). Being
  non-binding, it is left out of the efficacy boundaries, so it can only lower the
  false-threshold rate.
* **Reporting**: the stage-wise adjusted p-value (the chance under the null of stopping
  earlier, or at the same look with a larger statistic), which is below ``alpha`` exactly
  when the study stopped for efficacy.

The boundaries are computed once, before the first trial, and recorded on the study's parent
run and in its state: a resumed study never recomputes them and never re-decides a look.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONTINUE = "continue"
STOP_THRESHOLD = "threshold"
STOP_FUTILITY = "futility"
STOP_FINAL = "no threshold"
DECISIONS = (CONTINUE, STOP_THRESHOLD, STOP_FUTILITY, STOP_FINAL)
# Draws of the joint null normal behind the boundaries: the first look's share of alpha is
# ~0.001 (O'Brien-Fleming, t = 3/8), so 400 k draws give ~600 crossings there (SE ~4%).
DRAWS = 400_000
_P_FLOOR = 1e-12


def spent_alpha(looks: tuple[int, ...], alpha: float, spending: str) -> np.ndarray:
    """Cumulative alpha spent by each look (the last equals ``alpha``)."""
    t = np.asarray(looks, dtype=float) / looks[-1]
    if spending == "obf":
        z = stats.norm.ppf(1 - alpha / 2)
        return 2 - 2 * stats.norm.cdf(z / np.sqrt(t))
    if spending == "pocock":
        return alpha * np.log(1 + (np.e - 1) * t)
    raise ValueError(f"unknown alpha spending {spending!r}; use obf or pocock")


def canonical_correlation(looks: tuple[int, ...]) -> np.ndarray:
    """``corr(Z_j, Z_k) = sqrt(n_j / n_k)``: a statistic that sums independent seeds."""
    n = np.asarray(looks, dtype=float)
    return np.sqrt(np.minimum.outer(n, n) / np.maximum.outer(n, n))


def normal_scores(p: np.ndarray) -> np.ndarray:
    """Each look's p-values (rows: simulated studies) as van der Waerden normal scores.

    Ranks, not ``Phi^-1(1 - p)`` itself: a bootstrap p-value is discrete and a maximum over
    nulls piles up near 1, and the correlation of the statistic's underlying scale is what
    the boundaries need (a Gaussian copula).
    """
    ranks = stats.rankdata(-np.asarray(p, dtype=float), axis=0)
    return stats.norm.ppf(ranks / (p.shape[0] + 1))


def estimate_correlation(p: np.ndarray) -> np.ndarray:
    """The statistic's correlation across looks from simulated null p-values (studies x looks),
    projected to a valid correlation matrix."""
    r = np.corrcoef(normal_scores(p), rowvar=False)
    r = np.atleast_2d(np.nan_to_num(r, nan=0.0))
    w, v = np.linalg.eigh((r + r.T) / 2)
    r = (v * np.maximum(w, 1e-6)) @ v.T
    d = np.sqrt(np.diag(r))
    return r / np.outer(d, d)


def _draws(correlation: np.ndarray, seed: int, draws: int = DRAWS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(correlation)
    return rng.standard_normal((draws, len(correlation))) @ chol.T


def efficacy_bounds(correlation: np.ndarray, spent: np.ndarray, seed: int = 0) -> np.ndarray:
    """Z boundaries: P(cross by look k) = ``spent[k]`` under the joint null normal."""
    z = _draws(correlation, seed)
    alive = np.ones(len(z), dtype=bool)
    bounds = []
    previous = 0.0
    for k in range(z.shape[1]):
        # Crossings at look k among the draws still running: the top ``share`` of them.
        share = max(float(spent[k] - previous), 1.0 / len(z))
        count = int(round(share * len(z)))
        candidates = np.sort(z[alive, k])[::-1]
        bound = float(candidates[min(count, candidates.size) - 1])
        bounds.append(bound)
        alive &= z[:, k] < bound
        previous = float(spent[k])
    return np.array(bounds)


@dataclass(frozen=True)
class Boundaries:
    """A sequential study's boundaries, as recorded on its parent run and in its state.

    Attributes:
        looks: Cumulative seeds at each look.
        alpha: Overall false-threshold rate.
        spending: ``obf`` or ``pocock``.
        spent: Cumulative alpha by each look.
        z: Efficacy boundaries on the statistic ``Z = Phi^-1(1 - p)``.
        p: The same as p-value boundaries ``c_k`` (stop with "threshold" when ``p <= c_k``).
        futility: p-value at or above which an interim look stops (None: never).
        correlation: The statistic's correlation across looks, simulated under the grid.
        canonical: ``sqrt(n_j / n_k)``, for comparison.
        simulations: Simulated null studies behind ``correlation``.
    """

    looks: tuple[int, ...]
    alpha: float
    spending: str
    spent: tuple[float, ...]
    z: tuple[float, ...]
    p: tuple[float, ...]
    futility: float | None
    correlation: tuple[tuple[float, ...], ...]
    canonical: tuple[tuple[float, ...], ...]
    simulations: int

    def to_dict(self) -> dict:
        """Plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Boundaries:
        """The inverse of :meth:`to_dict` (lists from JSON become tuples)."""
        fields = dict(data)
        for key in ("looks", "spent", "z", "p"):
            fields[key] = tuple(fields[key])
        for key in ("correlation", "canonical"):
            fields[key] = tuple(tuple(row) for row in fields[key])
        fields["looks"] = tuple(int(n) for n in fields["looks"])
        return cls(**fields)

    def n_boot(self, look: int, base: int = 1000) -> int:
        """Bootstrap replicates that let look ``look``'s p-value reach its boundary.

        A bootstrap p-value is at least ``1 / (n_boot + 1)``; a boundary below that could
        never be crossed, so the replicates grow until one exceedance is still a crossing.
        """
        return max(base, int(np.ceil(2.0 / self.p[look - 1])))


def boundaries_from_null(
    looks: tuple[int, ...],
    alpha: float,
    spending: str,
    futility: float | None,
    null_p: np.ndarray,
    seed: int = 0,
) -> Boundaries:
    """Boundaries from simulated null p-values (rows: studies, columns: looks)."""
    corr = estimate_correlation(null_p)
    return boundaries_from_correlation(
        looks, alpha, spending, futility, corr, null_p.shape[0], seed
    )


def boundaries_from_correlation(
    looks: tuple[int, ...],
    alpha: float,
    spending: str,
    futility: float | None,
    correlation: np.ndarray,
    simulations: int = 0,
    seed: int = 0,
) -> Boundaries:
    """Boundaries for a given correlation of the statistic across looks (``simulations``:
    how many simulated studies estimated it; 0 for the textbook one)."""
    spent = spent_alpha(looks, alpha, spending)
    z = efficacy_bounds(correlation, spent, seed)
    return Boundaries(
        looks=tuple(int(n) for n in looks),
        alpha=float(alpha),
        spending=spending,
        spent=tuple(float(s) for s in spent),
        z=tuple(float(b) for b in z),
        p=tuple(float(stats.norm.sf(b)) for b in z),
        futility=None if futility is None else float(futility),
        correlation=tuple(tuple(float(c) for c in row) for row in correlation),
        canonical=tuple(tuple(float(c) for c in row) for row in canonical_correlation(looks)),
        simulations=int(simulations),
    )


def z_of(p: float) -> float:
    """The statistic ``Z = Phi^-1(1 - p)`` of a p-value."""
    return float(stats.norm.isf(max(float(p), _P_FLOOR)))


def decide(bounds: Boundaries, look: int, p: float) -> str:
    """The decision after look ``look`` (1-based) with shared-test p-value ``p``."""
    if not np.isfinite(p):
        # No shared test (too few capacities): nothing to decide on but the seed budget.
        return STOP_FINAL if look == len(bounds.looks) else CONTINUE
    if p <= bounds.p[look - 1]:
        return STOP_THRESHOLD
    if look == len(bounds.looks):
        return STOP_FINAL
    if bounds.futility is not None and p >= bounds.futility:
        return STOP_FUTILITY
    return CONTINUE


def first_stop(bounds: Boundaries, p_by_look) -> tuple[int, str]:
    """(look, decision) where a study with these p-values (one per look) stops."""
    for look, p in enumerate(p_by_look, start=1):
        decision = decide(bounds, look, float(p))
        if decision != CONTINUE:
            return look, decision
    return len(bounds.looks), STOP_FINAL


def adjusted_p(bounds: Boundaries, look: int, p: float, seed: int = 1) -> float:
    """Stage-wise adjusted p-value of a study that stopped at ``look`` with p-value ``p``.

    The null probability of crossing an efficacy boundary at an earlier look, or of reaching
    ``look`` and seeing a statistic at least as large (stage-wise ordering). It is at most
    ``alpha`` exactly when the study crossed a boundary.
    """
    z_obs = z_of(p)
    z = _draws(np.array(bounds.correlation), seed)
    earlier = np.zeros(len(z), dtype=bool)
    for k in range(look - 1):
        earlier |= z[:, k] >= bounds.z[k]
    at_look = ~earlier & (z[:, look - 1] >= z_obs)
    return float(min(1.0, max((earlier | at_look).mean(), 1.0 / len(z))))


def look_result(
    table, *, n_boot: int, seed: int = 0, fast: bool = False, grid_points: int | None = None
) -> dict:
    """The shared test on the seeds a look has so far, through the real verdict function.

    Returns:
        ``p`` (nan when the study cannot be tested yet), ``direction`` (+1 gain rising with
        capacity, -1 falling, 0 none) and the shared row's ``verdict``.
    """
    from capstudy.analysis import verdicts

    result = verdicts.analyze_table(table, find_threshold=True, n_boot=n_boot, seed=seed, fast=fast)
    row = result.pooled.iloc[0] if result.pooled is not None and len(result.pooled) else {}
    p = row.get("p", np.nan)
    slope = row.get("slope_mean", np.nan)
    return {
        "p": float(p) if p is not None else float("nan"),
        "direction": int(np.sign(slope)) if np.isfinite(slope) else 0,
        "verdict": row.get("verdict", ""),
    }


def look_of(bounds: Boundaries, n_seeds: int) -> int:
    """The look a table with ``n_seeds`` seeds per cell stands at (1 before the first ends)."""
    done = [k for k, n in enumerate(bounds.looks, start=1) if n <= n_seeds]
    return done[-1] if done else 1


def apply_design(pooled, design: dict, n_seeds: int):
    """The shared row judged by the sequential design, as ``capstudy analyze`` reports it.

    Args:
        pooled: the one-row shared-threshold table (:func:`capstudy.analysis.shared.fit_shared`).
        design: ``{"boundaries": Boundaries.to_dict(), "looks": [recorded look decisions]}``
            as the launch recorded them on the parent run.
        n_seeds: seeds per cell in the analysed table.

    Returns:
        The row with the verdict by the look's boundary (threshold only when ``p <= c_k``),
        and the columns ``design``, ``look``, ``looks``, ``boundary_p``, ``p_adjusted``
        (stage-wise), ``decision`` (this analysis's) and ``recorded`` (the launch's decision
        at this look, when it made one).
    """
    from capstudy.analysis.threshold import VERDICT_NONE, VERDICT_THRESHOLD

    bounds = Boundaries.from_dict(design["boundaries"])
    out = pooled.copy()
    row = out.iloc[0]
    look = look_of(bounds, n_seeds)
    recorded = {int(r["look"]): r["decision"] for r in design.get("looks", [])}
    p = float(row["p"]) if "p" in row and row["p"] == row["p"] else float("nan")
    decision = decide(bounds, look, p)
    out["design"] = "sequential"
    out["spending"] = bounds.spending
    out["look"] = look
    out["looks"] = "/".join(map(str, bounds.looks))
    out["boundary_p"] = bounds.p[look - 1]
    out["p_adjusted"] = adjusted_p(bounds, look, p) if p == p else float("nan")
    out["decision"] = decision
    out["recorded"] = recorded.get(look, "")
    if row["verdict"] in (VERDICT_THRESHOLD, VERDICT_NONE):
        out["verdict"] = VERDICT_THRESHOLD if decision == STOP_THRESHOLD else VERDICT_NONE
        if decision != STOP_THRESHOLD and row.get("best_model") == "hinge":
            out["best_model"] = "not decided"
    return out


def design_statement(row) -> str:
    """One sentence on the sequential design behind a shared row ('' for a fixed design)."""
    if row.get("design") != "sequential":
        return ""
    looks = str(row["looks"]).split("/")
    k = int(row["look"])
    spending = {"obf": "O'Brien-Fleming", "pocock": "Pocock"}.get(row["spending"], "")
    where = f"look {k} of {len(looks)} ({looks[k - 1]} of {looks[-1]} seeds per cell)"
    p = row["p"]
    stated = {
        STOP_THRESHOLD: "the study stopped here: threshold",
        STOP_FUTILITY: "the study stopped here for futility",
        STOP_FINAL: "the last look: no threshold",
        CONTINUE: "the study continues to the next look",
    }[row["decision"]]
    text = (
        f" Sequential design ({spending} alpha spending, looks at {', '.join(looks)} seeds): "
        f"{where}, p = {p:.3g} against this look's boundary {row['boundary_p']:.3g}; "
        f"{stated}; stage-wise adjusted p = {row['p_adjusted']:.3g}. The breakpoint interval "
        "is the look's fixed-sample interval."
    )
    if row.get("recorded") and row["recorded"] != row["decision"]:
        text += f" (The launch decided '{row['recorded']}' at this look with its own replicates.)"
    return text


def drift_for_power(power: float, alpha: float) -> float:
    """The statistic's mean at the last look for a one-sided level-``alpha`` test of this
    power (a Brownian-motion approximation; 0 when there is no effect)."""
    power = min(max(power, alpha), 1 - 1e-6)
    return float(stats.norm.isf(alpha) + stats.norm.ppf(power))


def expected_seeds(bounds: Boundaries, drift: float, seed: int = 2) -> tuple[float, float]:
    """(expected seeds per cell, chance of stopping with "threshold") of the design when the
    statistic drifts as ``drift * sqrt(t)`` (canonical correlation, futility included)."""
    n = np.asarray(bounds.looks, dtype=float)
    corr = canonical_correlation(bounds.looks)
    z = _draws(corr, seed, 100_000) + drift * np.sqrt(n / n[-1])
    running = np.ones(len(z), dtype=bool)
    seeds = np.full(len(z), n[-1])
    threshold = np.zeros(len(z), dtype=bool)
    z_fut = None if bounds.futility is None else float(stats.norm.isf(bounds.futility))
    for k in range(len(n)):
        win = running & (z[:, k] >= bounds.z[k])
        threshold |= win
        stop = win.copy()
        if z_fut is not None and k < len(n) - 1:
            stop |= running & (z[:, k] <= z_fut)
        seeds[stop] = n[k]
        running &= ~stop
    return float(seeds.mean()), float(threshold.mean())
