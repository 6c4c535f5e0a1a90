"""The analysis from a tidy table to an output folder: selection, gains, thresholds, report.

The CLI (``capstudy analyze``) loads the table and calls :func:`run_analysis`; tests call it
directly on hand-made tables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from capstudy.analysis import figures, gains, report, selection, tables, threshold
from capstudy.errors import CapstudyError

METHODS = (
    "Selection: per cell (family, phi, init, train domain, seed) the trial with the best final "
    "in-domain validation metric; shift metrics never choose. Gain: metric(init) - "
    "metric(random) on the same seed. Gain CI: 95% percentile bootstrap over seeds, deviations "
    "inflated by sqrt(n/(n-1)). Within seed noise: |mean gain| <= SD across seeds of the "
    "random-init metric of the same variant and domain. Threshold: hinge gain = a + b max(0, "
    "log10 capacity - x0) by profile least squares (grid + refinement); breakpoint 95% CI by a "
    "seed bootstrap within each capacity calibrating the profile likelihood ratio; the hinge "
    "is reported as a threshold only if it beats both a straight line and a constant in "
    "parametric-bootstrap likelihood-ratio tests at level alpha and its breakpoint lies inside "
    "the observed capacities. AICc differences say by how much."
)


@dataclass
class AnalysisOptions:
    """What to analyze and how (the CLI flags)."""

    capacity: str = "backbone"
    metric: str | None = None
    find_threshold: bool = False
    n_boot: int = 1000
    seed: int = 0
    mode: str | None = None
    alpha: float = 0.05


@dataclass
class AnalysisResult:
    """Tables, conclusions and written files of one analysis."""

    study: str
    metric: str
    capacity: str
    out_dir: Path
    selected: pd.DataFrame
    per_seed: pd.DataFrame
    summary: pd.DataFrame
    fits: pd.DataFrame | None
    conclusions: list[str]
    files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


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


def run_analysis(
    table: pd.DataFrame,
    study: str,
    out_dir: Path,
    options: AnalysisOptions,
    source: str = "",
    skipped: Counter | None = None,
) -> AnalysisResult:
    """Run the whole analysis on a normalized tidy table and write the output folder."""
    metric = resolve_metric(table, options.metric)
    capacity = resolve_capacity(table, options.capacity)
    rng = np.random.default_rng(options.seed)
    chosen = selection.select_best(table, options.mode)
    paired = gains.paired_gains(chosen.table, metric)
    summary = gains.summarize_gains(paired.per_seed, chosen.table, metric, options.n_boot, rng)
    fits = None
    if options.find_threshold and not paired.per_seed.empty:
        fits = threshold.fit_thresholds(
            paired.per_seed, capacity, n_boot=options.n_boot, rng=rng, alpha=options.alpha
        )
        first = gains.smallest_significant(summary, capacity)
        fits = fits.merge(first, on=gains.GROUP_KEYS, how="left")
    result = AnalysisResult(
        study=study,
        metric=metric,
        capacity=capacity,
        out_dir=out_dir,
        selected=chosen.table,
        per_seed=paired.per_seed,
        summary=summary,
        fits=fits,
        conclusions=_conclusions(fits, paired.per_seed, metric),
        counts={
            "trials": chosen.n_trials,
            "cells": chosen.n_cells,
            "trials_without_selection_value": chosen.n_without_value,
            "unpaired_seeds": paired.n_unpaired,
            **{f"skipped ({why})": n for why, n in (skipped or {}).items()},
        },
    )
    _write_outputs(result, table, options, source)
    return result


def _conclusions(fits: pd.DataFrame | None, per_seed: pd.DataFrame, metric: str) -> list[str]:
    """Plain-language conclusions; says so when there is nothing to compare."""
    if per_seed.empty:
        return [
            "No gains to analyze: no trial of a pretrained initialization has a random-init "
            "partner with the same family, phi, domains and seed."
        ]
    return [] if fits is None else [report.conclusion(r, metric) for _, r in fits.iterrows()]


def _write_outputs(
    result: AnalysisResult, table: pd.DataFrame, options: AnalysisOptions, source: str
) -> None:
    out = result.out_dir
    (out / "tables").mkdir(parents=True, exist_ok=True)
    named = {
        "tidy.csv": table,
        "selected.csv": result.selected,
        "gains_per_seed.csv": result.per_seed,
        "gains.csv": result.summary,
    }
    if result.fits is not None:
        named["thresholds.csv"] = result.fits
    for name, df in named.items():
        df.to_csv(out / "tables" / name, index=False)
        result.files.append(out / "tables" / name)
    figs = figures.all_figures(
        result.selected,
        result.summary,
        result.fits,
        result.capacity,
        result.metric,
        out / "figures",
    )
    fig_paths = [p for paths in figs.values() for p in sorted(paths.values())]
    result.files.extend(fig_paths)
    header = _header(result, options, source)
    sections = _sections(result, fig_paths, out)
    result.files.append(report.write_markdown(out / "report.md", header, sections))
    html_tables = [("Gains", result.summary, report.GAIN_COLUMNS)]
    if result.fits is not None:
        html_tables.insert(0, ("Thresholds", result.fits, report.THRESHOLD_COLUMNS))
    result.files.append(
        report.write_html(
            out / "report.html",
            f"capstudy analysis: {result.study}",
            header,
            result.conclusions or ["Threshold fitting was not requested (--find-threshold)."],
            html_tables,
            fig_paths,
            METHODS,
        )
    )


def _header(result: AnalysisResult, options: AnalysisOptions, source: str) -> list[str]:
    counts = ", ".join(f"{k}: {v}" for k, v in result.counts.items())
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    return [
        f"# capstudy analysis: {result.study}",
        "",
        f"Source: {source or 'table'}. Generated {stamp}.",
        f"Metric: {result.metric}; capacity: {result.capacity}; bootstrap replicates: "
        f"{options.n_boot}; seed: {options.seed}; threshold test level: {options.alpha}.",
        f"Counts: {counts}.",
    ]


def _sections(result: AnalysisResult, fig_paths: list[Path], out: Path) -> list:
    sections = []
    if result.conclusions:
        sections.append(("Conclusions", "\n".join(f"- {c}" for c in result.conclusions)))
    if result.fits is not None:
        sections.append(
            ("Thresholds", report.markdown_table(result.fits, report.THRESHOLD_COLUMNS))
        )
    if not result.summary.empty:
        sections.append(("Gains", report.markdown_table(result.summary, report.GAIN_COLUMNS)))
    figs = "\n\n".join(f"![{p.name}]({p.relative_to(out).as_posix()})" for p in fig_paths)
    sections.append(("Figures", figs or "No figures."))
    sections.append(("Methods", METHODS))
    return sections


def mlflow_metrics(result: AnalysisResult) -> dict[str, float]:
    """Key numbers for the analysis run: counts and, per threshold fit, its result."""
    metrics = {
        "count/" + re.sub(r"[^A-Za-z0-9_]+", "_", k).strip("_"): float(v)
        for k, v in result.counts.items()
    }
    if result.fits is None:
        return metrics
    for _, row in result.fits.iterrows():
        prefix = (
            f"threshold/{row['family']}/{row['train_domain']}/{row['eval_domain']}/{row['init']}"
        )
        values = {
            "found": float(row["verdict"] == threshold.VERDICT_THRESHOLD),
            "capacity": row["threshold"],
            "capacity_lo": row["threshold_lo"],
            "capacity_hi": row["threshold_hi"],
            "p_vs_linear": row["p_vs_linear"],
            "p_vs_constant": row["p_vs_constant"],
            "delta_aicc": row["delta_aicc"],
            "first_significant_capacity": row["first_significant_capacity"],
        }
        for key, value in values.items():
            if value is not None and np.isfinite(float(value)):
                metrics[f"{prefix}/{key}"] = float(value)
    return metrics
