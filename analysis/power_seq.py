"""Simulated sequential studies: boundaries under the study's grid, and designs compared.

:mod:`capstudy.analysis.sequential` turns the statistic's joint null across looks into
boundaries; this module produces that joint null the way :mod:`capstudy.analysis.power`
produces power: tables shaped like the study's grid (:func:`power_sim.simulate_table`) with
the last look's seeds, each look's seeds (the first ``n_k``) analysed by the real verdict
function (:func:`sequential.look_result`, fast mode). The same simulated studies then give
the sequential design's and the fixed designs' power, false-threshold rates and expected
seeds, so the comparison is paired.

Each look is analysed with the fast mode's coarser breakpoint grid and 199 bootstrap
replicates, raised where a look's boundary is below what 199 replicates can resolve (a
p-value is at least 1/200), as a launch raises them (:meth:`sequential.Boundaries.n_boot`):
an O'Brien-Fleming first look can stop in simulation as it can in a launch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from capstudy.analysis import sequential, tables
from capstudy.analysis.power import SMOOTH_EXPONENTS, findable_families, run_tasks
from capstudy.analysis.power_design import Design
from capstudy.analysis.power_sim import Effect, noise_scale, simulate_table
from capstudy.analysis.verdicts import FAST_GRID_POINTS, FAST_N_BOOT

# No-threshold worlds of the joint null, used in turn: a line with the kink's rise, and
# power laws of either curvature.
NULL_SHAPES = (("null", 0.0),) + tuple(("smooth", e) for e in SMOOTH_EXPONENTS)
_STREAM = {"kink": 1, "null": 2, "smooth": 3, "boundaries": 4}


@dataclass(frozen=True)
class _LookTask:
    design: Design
    effect: Effect
    scale: float
    scenario: str
    exponent: float
    looks: tuple[int, ...]
    replicate: int
    base_seed: int
    stream: int
    n_boots: tuple[int, ...] = ()  # per look; () : FAST_N_BOOT at every look


def _one_study(task: _LookTask) -> dict:
    """Simulate one study with the last look's seeds; analyse each look's first seeds."""
    rng = np.random.default_rng([task.base_seed, task.stream, task.replicate])
    table = simulate_table(
        task.design,
        task.effect,
        task.looks[-1],
        rng,
        shape=task.scenario,
        exponent=task.exponent,
        scale=task.scale,
    )
    table = tables.normalize(table, source="simulated study")
    seed = int(rng.integers(2**31))
    row: dict = {"scenario": task.scenario, "replicate": task.replicate}
    for k, n in enumerate(task.looks, start=1):
        n_boot = task.n_boots[k - 1] if task.n_boots else FAST_N_BOOT
        # fast=False: the replicates are n_boot exactly (a look's boundary must be reachable);
        # the coarser breakpoint grid of the fast mode is kept.
        res = sequential.look_result(
            table[table["seed"] < n], n_boot=n_boot, seed=seed, grid_points=FAST_GRID_POINTS
        )
        row[f"p{k}"], row[f"dir{k}"] = res["p"], res["direction"]
    return row


def simulate_looks(
    design: Design,
    effect: Effect,
    looks: tuple[int, ...],
    scenarios: tuple[str, ...],
    replicates: int,
    *,
    workers: int | None = None,
    base_seed: int = 0,
    stream: str | None = None,
    bounds: sequential.Boundaries | None = None,
) -> pd.DataFrame:
    """``replicates`` simulated studies per scenario, each look's p-value and direction.

    ``null`` and ``smooth`` alternate their exponents (:data:`NULL_SHAPES`); ``stream``
    names an independent random stream (boundaries are fitted on one, judged on others).
    With ``bounds``, each look's bootstrap has the replicates a launch gives it
    (:meth:`sequential.Boundaries.n_boot` above the fast mode's 199), so a boundary below
    1/200 can be crossed in simulation as in a launch.
    """
    n_boots = (
        tuple(bounds.n_boot(k, FAST_N_BOOT) for k in range(1, len(looks) + 1)) if bounds else ()
    )
    scale = noise_scale(effect, design.samples_per_cell, design.mode)
    tasks = []
    for scenario in scenarios:
        for r in range(replicates):
            exponent = SMOOTH_EXPONENTS[r % len(SMOOTH_EXPONENTS)]
            s = _STREAM[stream or scenario]
            tasks.append(
                _LookTask(
                    design, effect, scale, scenario, exponent, looks, r, base_seed, s, n_boots
                )
            )
    return pd.DataFrame(run_tasks(_one_study, tasks, workers))


def null_boundaries(
    design: Design,
    effect: Effect,
    seq,
    *,
    workers: int | None = None,
    base_seed: int = 0,
) -> tuple[sequential.Boundaries, pd.DataFrame]:
    """The study's boundaries, from ``seq.simulations`` simulated no-threshold studies.

    Args:
        design: The study's grid (:func:`power_design.design_from_study`).
        effect: The assumed noise (its slope sets the null curves' rise).
        seq: The study's :class:`~capstudy.study.spec.SequentialSpec`.
        workers: Processes.
        base_seed: Seed of the simulation (the boundaries are reproducible).

    Returns:
        The boundaries and the simulated null p-values (one row per study).
    """
    rows = []
    for i, (shape, exponent) in enumerate(NULL_SHAPES):
        n = len(range(i, seq.simulations, len(NULL_SHAPES)))
        part = _null_part(design, effect, seq.looks, shape, exponent, n, workers, base_seed + i)
        rows.append(part)
    null = pd.concat(rows, ignore_index=True)
    p = null[[f"p{k}" for k in range(1, len(seq.looks) + 1)]].to_numpy(dtype=float)
    p = np.where(np.isfinite(p), p, 1.0)
    bounds = sequential.boundaries_from_null(
        seq.looks, seq.alpha, seq.spending, seq.futility, p, seed=base_seed
    )
    return bounds, null


def _null_part(design, effect, looks, shape, exponent, n, workers, seed) -> pd.DataFrame:
    scale = noise_scale(effect, design.samples_per_cell, design.mode)
    tasks = [
        _LookTask(design, effect, scale, shape, exponent, looks, r, seed, _STREAM["boundaries"])
        for r in range(n)
    ]
    return pd.DataFrame(run_tasks(_one_study, tasks, workers))


def outcomes(reps: pd.DataFrame, bounds: sequential.Boundaries, design: Design, effect: Effect):
    """Each simulated study's sequential and fixed-design outcomes.

    Adds ``stop_look``, ``decision``, ``seeds_used``, ``seq_threshold`` (stopped with
    "threshold"), ``seq_found`` (...in the true direction where a kink is findable) and, for
    each look's seed count ``n`` as a fixed design, ``fixed{n}_threshold``/``_found`` (the
    fixed analysis says threshold when ``p < alpha``).
    """
    looks = bounds.looks
    findable = any(findable_families(design, effect.kink).values())
    truth = np.sign(effect.slope)
    out = reps.copy()
    stops = [
        sequential.first_stop(bounds, [r[f"p{k}"] for k in range(1, len(looks) + 1)])
        for _, r in reps.iterrows()
    ]
    out["stop_look"] = [look for look, _ in stops]
    out["decision"] = [d for _, d in stops]
    out["seeds_used"] = [looks[look - 1] for look, _ in stops]
    direction = np.array([r[f"dir{look}"] for (look, _), (_, r) in zip(stops, reps.iterrows())])
    out["seq_threshold"] = out["decision"] == sequential.STOP_THRESHOLD
    out["seq_found"] = out["seq_threshold"] & (direction == truth) & findable
    for k, n in enumerate(looks, start=1):
        hit = out[f"p{k}"] < bounds.alpha
        out[f"fixed{n}_threshold"] = hit
        out[f"fixed{n}_found"] = hit & (out[f"dir{k}"] == truth) & findable
    return out


def compare_designs(outs: pd.DataFrame, bounds: sequential.Boundaries) -> pd.DataFrame:
    """Per scenario, the sequential design against each fixed design: one row per design.

    ``threshold`` is the share of studies saying "threshold" (power under ``kink``, the
    false-threshold rate under ``null`` and ``smooth``), ``found`` the share in the true
    direction, ``seeds`` the expected seeds per cell (a fixed design always uses all of its).
    """
    rows = []
    for scenario, part in outs.groupby("scenario", sort=False):
        n = len(part)
        for name, thr, found, seeds in [
            (
                "sequential " + "/".join(map(str, bounds.looks)),
                part["seq_threshold"],
                part["seq_found"],
                part["seeds_used"].mean(),
            ),
            *[
                (f"fixed {s}", part[f"fixed{s}_threshold"], part[f"fixed{s}_found"], float(s))
                for s in bounds.looks
            ],
        ]:
            rate = float(thr.mean())
            rows.append(
                {
                    "scenario": scenario,
                    "design": name,
                    "studies": n,
                    "threshold": rate,
                    "threshold_se": float(np.sqrt(rate * (1 - rate) / n)),
                    "found": float(found.mean()),
                    "seeds": float(seeds),
                    "seeds_se": float(part["seeds_used"].std(ddof=1) / np.sqrt(n))
                    if name.startswith("sequential")
                    else 0.0,
                }
            )
    return pd.DataFrame(rows)


def hours_of(seeds: float, max_seeds: int, cost: tuple[float, float] | None) -> float:
    """Device-hours of a design using ``seeds`` seeds per cell on average.

    ``cost`` is (trial hours with every seed, pretraining hours): trials scale with seeds,
    pretraining does not. None: nan.
    """
    if cost is None:
        return float("nan")
    trials, pretrain = cost
    return pretrain + trials * seeds / max_seeds


def render_comparison(
    table: pd.DataFrame, bounds: sequential.Boundaries, cost: tuple[float, float] | None, unit: str
) -> list[str]:
    """The sequential design against fixed designs, one block per scenario."""
    names = {
        "kink": "with a kink (power)",
        "null": "a line, no kink (false thresholds)",
        "smooth": "a smooth power law, no kink (false thresholds)",
    }
    lines = [
        f"Sequential design {'/'.join(map(str, bounds.looks))} seeds vs fixed designs "
        f"(boundaries p <= {', '.join(f'{c:.4f}' for c in bounds.p)}; "
        + (
            f"futility at p >= {bounds.futility:g})"
            if bounds.futility is not None
            else "no futility)"
        ),
        f"  {'world':<48} {'design':<20} {'threshold':>12} {'E[seeds]':>10} {unit:>14}",
    ]
    for scenario, part in table.groupby("scenario", sort=False):
        for _, row in part.iterrows():
            rate = f"{100 * row['threshold']:.0f}% ±{100 * row['threshold_se']:.0f}"
            seeds = f"{row['seeds']:.2f}"
            hours = hours_of(row["seeds"], bounds.looks[-1], cost)
            shown = f"{hours:,.0f}" if hours == hours else "-"
            lines.append(
                f"  {names.get(scenario, scenario):<48} {row['design']:<20} {rate:>12} "
                f"{seeds:>10} {shown:>14}"
            )
    return lines


def canonical_boundaries(seq) -> sequential.Boundaries:
    """Boundaries from the textbook correlation ``sqrt(n_j / n_k)``: a quick plan's estimate
    (a launch simulates the grid's own, :func:`null_boundaries`)."""
    corr = sequential.canonical_correlation(seq.looks)
    return sequential.boundaries_from_correlation(
        seq.looks, seq.alpha, seq.spending, seq.futility, corr
    )
