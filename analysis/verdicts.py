"""From a tidy trial table to the verdict table, in memory: no files, no figures.

selection -> paired gains -> t intervals with Holm across capacities -> per comparison: hinge
vs constant, line and smooth power law, Benjamini-Hochberg across the study's threshold
tests -> the study's primary answer: one breakpoint shared by every comparison, tested and
bounded by a joint bootstrap of runs (:mod:`capstudy.analysis.shared`).

:func:`analyze_table` is what ``capstudy analyze`` runs before writing anything, and what a
power analysis calls on hundreds of simulated tables: lower ``n_boot`` and ``grid_points``
there (``fast=True`` picks 199 replicates and a 61-point grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from capstudy.analysis import (
    gains,
    hinge,
    intervals,
    selection,
    sequential,
    shared,
    tables,
    threshold,
)
from capstudy.errors import CapstudyError

FAST_N_BOOT = 199
FAST_GRID_POINTS = 61
# Thresholds are fitted when asked for (``capstudy analyze --find-threshold``); the one default.
FIND_THRESHOLD = False


@dataclass
class Verdicts:
    """Everything the analysis concludes, as tables (see :func:`analyze_table`)."""

    metric: str
    capacity: str
    selected: pd.DataFrame
    per_seed: pd.DataFrame
    summary: pd.DataFrame
    fits: pd.DataFrame | None
    counts: dict[str, int] = field(default_factory=dict)
    min_seeds: int = 0
    pooled: pd.DataFrame | None = None
    contrasts: pd.DataFrame | None = None

    @property
    def reliable(self) -> bool:
        """Whether every compared variant has enough seeds for its interval to be trusted."""
        return self.min_seeds >= intervals.MIN_RELIABLE_SEEDS


def resolve_metric(table: pd.DataFrame, metric: str | None) -> str:
    """The evaluation metric to analyze: ``metric``, else the study metric's name, else the
    first metric column.

    Raises:
        CapstudyError: the asked-for metric is not a column.
    """
    available = tables.metric_columns(table)
    if metric:
        name = metric.rsplit("/", 1)[-1]
        if name not in available:
            raise CapstudyError(
                f"--metric {metric}: not in the table (have {', '.join(available)})"
            )
        return name
    studies = [m.rsplit("/", 1)[-1] for m in table["selection_metric"].unique() if m]
    return studies[0] if studies and studies[0] in available else available[0]


def resolve_capacity(table: pd.DataFrame, capacity: str) -> str:
    """Map ``backbone|detector|macs`` to its column and check it has positive values."""
    column = tables.CAPACITY_COLUMNS.get(capacity)
    if column is None:
        raise CapstudyError(f"--capacity {capacity}: use one of backbone, detector, macs")
    values = pd.to_numeric(table[column], errors="coerce")
    if not (values > 0).any():
        raise CapstudyError(f"--capacity {capacity}: column {column} has no positive values")
    return column


def analyze_table(
    table: pd.DataFrame,
    *,
    metric: str | None = None,
    capacity: str = "backbone",
    find_threshold: bool = FIND_THRESHOLD,
    n_boot: int = 1000,
    seed: int = 0,
    mode: str | None = None,
    alpha: float = 0.05,
    level: float = 0.95,
    grid_points: int = hinge.DEFAULT_GRID_POINTS,
    fast: bool = False,
    plateau_margin: float = threshold.PLATEAU_MARGIN,
    decade_margin: float = shared.DECADE_MARGIN,
    sequential_design: dict | None = None,
) -> Verdicts:
    """Run the statistics of a study on a tidy table (pure: no file I/O, no figures).

    Args:
        table: the tidy table; it is normalized here if it lacks the derived columns.
        metric: evaluation metric (default: the study metric's name).
        capacity: ``backbone``, ``detector`` or ``macs``.
        find_threshold: fit thresholds (else only gains and their intervals).
        n_boot: bootstrap replicates of the breakpoint CI and of each LR test.
        seed: seed of the random generator (results are reproducible).
        mode: selection mode ``max``/``min`` (default: the study's recorded mode, else from
            the metric name; :func:`capstudy.analysis.selection.resolve_mode`).
        alpha: family-wise error across capacities (Holm) and false discovery rate across
            threshold tests (Benjamini-Hochberg).
        level: confidence level of the intervals.
        grid_points: breakpoint grid resolution.
        fast: use ``FAST_N_BOOT`` replicates and ``FAST_GRID_POINTS`` grid points at most.
        plateau_margin: equivalence margin of "the gain vanishes" (metric units).
        decade_margin: equivalence margin of "the breakpoint is shared" (decades).
        sequential_design: a sequential study's recorded boundaries and look decisions
            (:func:`capstudy.analysis.sequential.apply_design`): the shared verdict then
            follows the boundary of the look the table stands at.

    Returns:
        The :class:`Verdicts`; ``fits`` holds one row per family x train x eval domain x
        init with the threshold verdict and the smallest significant capacity; ``pooled``
        the one-row shared threshold (the study's answer) and ``contrasts`` its breakpoint
        differences between families and domains.
    """
    if "pair_key" not in table.columns or "cell" not in table.columns:
        table = tables.normalize(table, source="table")
    if fast:
        n_boot, grid_points = min(n_boot, FAST_N_BOOT), min(grid_points, FAST_GRID_POINTS)
    metric = resolve_metric(table, metric)
    column = resolve_capacity(table, capacity)
    rng = np.random.default_rng(seed)
    chosen = selection.select_best(table, mode)
    paired = gains.paired_gains(chosen.table, metric)
    summary = gains.summarize_gains(paired.per_seed, chosen.table, metric, level)
    fits = pooled = contrasts = None
    if find_threshold and not paired.per_seed.empty:
        fits = threshold.fit_thresholds(
            paired.per_seed,
            column,
            n_boot=n_boot,
            rng=rng,
            alpha=alpha,
            grid_points=grid_points,
            plateau_margin=plateau_margin,
        )
        first = gains.smallest_significant(summary, column)
        fits = fits.merge(first, on=gains.GROUP_KEYS, how="left", validate="one_to_one")
        classes = summary.groupby(gains.GROUP_KEYS, as_index=False)["class_set"].first()
        fits = fits.merge(classes, on=gains.GROUP_KEYS, how="left", validate="one_to_one")
        options = shared.SharedOptions(
            n_boot, alpha, level, grid_points, plateau_margin, decade_margin
        )
        if sequential_design is not None:  # a boundary must be reachable by the p-value
            bounds = _bounds(sequential_design)
            look = sequential.look_of(bounds, _seeds(chosen.table))
            options = replace(options, n_boot=bounds.n_boot(look, options.n_boot))
        row = shared.fit_shared(paired.per_seed, column, rng, options)
        contrasts = row.pop("contrasts")
        pooled = pd.DataFrame([row])
        if sequential_design is not None:
            pooled = sequential.apply_design(pooled, sequential_design, _seeds(chosen.table))
    min_seeds = int(summary["n_seeds"].min()) if not summary.empty else 0
    return Verdicts(
        metric=metric,
        capacity=column,
        selected=chosen.table,
        per_seed=paired.per_seed,
        summary=summary,
        fits=fits,
        counts={
            "trials": chosen.n_trials,
            "cells": chosen.n_cells,
            "trials_without_selection_value": chosen.n_without_value,
            "unpaired_seeds": paired.n_unpaired,
        },
        min_seeds=min_seeds,
        pooled=pooled,
        contrasts=contrasts,
    )


def _bounds(design: dict) -> sequential.Boundaries:
    return sequential.Boundaries.from_dict(design["boundaries"])


def _seeds(selected: pd.DataFrame) -> int:
    """Seeds per cell a table has: the fewest over its variants and inits (a look that was
    interrupted leaves some cells short)."""
    keys = [c for c in ("variant_key", "init", "train_domain") if c in selected.columns]
    return int(selected.groupby(keys)["seed"].nunique().min()) if len(selected) else 0


def verdict_table(table: pd.DataFrame, **options) -> pd.DataFrame:
    """The verdict table alone (``analyze_table(...).fits``); options as there.

    Returns:
        One row per comparison, or an empty frame when nothing could be paired.
    """
    fits = analyze_table(table, find_threshold=True, **options).fits
    return fits if fits is not None else pd.DataFrame()
