"""The analysis from a tidy table to an output folder: selection, gains, thresholds, report.

:func:`run_analysis` writes the whole folder: tables, figures, the paper's figures and
tables, Pareto figures, cost, and the report led by its headline. Loading a study, choosing
the folder and logging the MLflow run are :func:`capstudy.analysis.analyze_study`'s job
(what ``capstudy analyze`` calls).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from capstudy.analysis import figures, headline, report, selection, shared, threshold, verdicts

METHODS = (
    "Splits: val/* metrics come from a validation subset held out of the train domain's "
    "training split and are used only to select trials (ASHA and the best trial per cell); "
    "every eval/<domain>/* metric, the train domain's included, comes from that domain's "
    "published evaluation split and is only reported. Selection: per cell (every grid dim) the "
    "trial with the best final val metric; shift metrics never choose. Gain: metric(init) - "
    "metric(random) between trials with the same comparison key (every grid dim except init, "
    "seed included). Gain CI: Student-t interval over seeds (exact for Gaussian seed noise; "
    "coverage validated by simulation); the smallest significant capacity uses t-test "
    "p-values Holm-adjusted across the capacities of a comparison and is named only with at "
    "least 3 seeds. Within seed noise: |mean gain| <= SD across seeds of the random-init "
    "metric of the same variant and domain. Threshold: hinge gain = a + b max(0, log10 "
    "capacity - x0) by profile least squares, at least two capacities on each arm; breakpoint "
    "CI by a seed bootstrap within each variant calibrating the profile likelihood ratio; the "
    "hinge must beat a constant, a straight line and a smooth power law a + b C^beta of either "
    "curvature (beta of either sign; its p-value the largest over the exponents the data do "
    "not reject) in parametric-bootstrap likelihood-ratio tests (p_threshold = the largest of "
    "the three), Benjamini-Hochberg adjusted across all threshold tests of the study "
    "(p_threshold_adj < alpha). AICc differences say by how much. Shared threshold (the "
    "study's answer, tables/pooled.csv): one breakpoint for all comparisons, each with its own "
    "plateau, slope and noise level, by profile likelihood on a common grid; its test (against "
    "each comparison's own constant, line and power law) and its CI come from a joint "
    "bootstrap that resamples runs (a drawn seed carries all its evaluation domains and its "
    "random-init baseline of both pretrained inits). The gain vanishes below it when two "
    "one-sided tests put the mean plateau within the plateau margin; breakpoint differences "
    "between families and domains (tables/contrasts.csv) are stated against a margin in "
    "decades."
)


@dataclass
class AnalysisOptions:
    """What to analyze and how (the options of ``capstudy analyze``).

    ``mode`` None takes the study's recorded mode (see
    :func:`capstudy.analysis.selection.resolve_mode`).
    """

    capacity: str = "backbone"
    metric: str | None = None
    find_threshold: bool = verdicts.FIND_THRESHOLD
    n_boot: int = 1000
    seed: int = 0
    mode: str | None = None
    alpha: float = 0.05
    plateau_margin: float = threshold.PLATEAU_MARGIN
    decade_margin: float = shared.DECADE_MARGIN


@dataclass
class AnalysisResult:
    """Tables, conclusions and written files of one analysis."""

    study: str
    metric: str
    capacity: str
    mode: str
    out_dir: Path
    selected: pd.DataFrame
    per_seed: pd.DataFrame
    summary: pd.DataFrame
    fits: pd.DataFrame | None
    conclusions: list[str]
    files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    min_seeds: int = 0
    pooled: pd.DataFrame | None = None
    contrasts: pd.DataFrame | None = None
    verdicts: pd.DataFrame | None = None  # the headline: one line per comparison
    run_id: str | None = None  # the MLflow analysis run, when one was logged


def run_analysis(
    table: pd.DataFrame,
    study: str,
    out_dir: Path,
    options: AnalysisOptions,
    source: str = "",
    skipped: Counter | None = None,
    extras: headline.Extras | None = None,
) -> AnalysisResult:
    """Run the whole analysis on a normalized tidy table and write the output folder.

    Args:
        table: the tidy table (:mod:`capstudy.analysis.tables`).
        study: the study's name (titles, MLflow experiment).
        out_dir: the folder to write (created).
        options: what to analyze and how.
        source: where the table came from, for the report.
        skipped: trial runs left out of the table, by reason (counted in the report).
        extras: cost and CPU latency read from MLflow (None: neither).

    Returns:
        The tables, conclusions and written files.
    """
    mode = selection.resolve_mode(table, options.mode)
    v = verdicts.analyze_table(
        table,
        metric=options.metric,
        capacity=options.capacity,
        find_threshold=options.find_threshold,
        n_boot=options.n_boot,
        seed=options.seed,
        mode=mode,
        alpha=options.alpha,
        plateau_margin=options.plateau_margin,
        decade_margin=options.decade_margin,
        sequential_design=extras.sequential if extras is not None else None,
    )
    result = AnalysisResult(
        study=study,
        metric=v.metric,
        capacity=v.capacity,
        mode=mode,
        out_dir=out_dir,
        selected=v.selected,
        per_seed=v.per_seed,
        summary=v.summary,
        fits=v.fits,
        conclusions=_conclusions(v),
        counts={**v.counts, **{f"skipped ({why})": n for why, n in (skipped or {}).items()}},
        min_seeds=v.min_seeds,
        pooled=v.pooled,
        contrasts=v.contrasts,
    )
    _write_outputs(result, table, options, source)
    headline.finish(result, extras, mode)
    result.verdicts = headline.headline_table(result.fits)
    return result


def _conclusions(v: verdicts.Verdicts) -> list[str]:
    """Plain-language conclusions; says so when there is nothing to compare."""
    if v.per_seed.empty:
        return [
            "No gains to analyze: no trial of a pretrained initialization has a random-init "
            "partner with the same comparison key (every grid dim but init) and domains."
        ]
    if v.fits is None:
        return []
    lines = [report.shared_statement(v.pooled, v.contrasts, v.metric)]
    lines += [report.study_statement(v.fits, v.min_seeds)]
    return [line for line in lines if line] + [
        report.conclusion(r, v.metric) for _, r in v.fits.iterrows()
    ]


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
    if result.pooled is not None:
        named["pooled.csv"] = result.pooled
        named["contrasts.csv"] = result.contrasts
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
        f"Metric: eval/<domain>/{result.metric} (each domain's published evaluation split; "
        f"trials were selected on val/* of a subset held out of the training split); "
        f"capacity: {result.capacity}; bootstrap replicates: {options.n_boot}; seed: "
        f"{options.seed}; error rate: {options.alpha} (Holm across capacities, "
        "Benjamini-Hochberg across threshold tests).",
        f"Counts: {counts}.",
        *report.reliability_lines(result.min_seeds),
        *report.class_set_lines(result.summary),
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
            # +1 a threshold above which the gain rises, -1 one above which it falls, 0 none.
            "found": float(row["direction"]),
            "capacity": row["threshold"],
            "capacity_lo": row["threshold_lo"],
            "capacity_hi": row["threshold_hi"],
            "p_vs_linear": row["p_vs_linear"],
            "p_vs_constant": row["p_vs_constant"],
            "p_vs_smooth": row["p_vs_smooth"],
            "p_threshold": row["p_threshold"],
            "p_threshold_adj": row["p_threshold_adj"],
            "delta_aicc": row["delta_aicc"],
            "first_significant_capacity": row["first_significant_capacity"],
        }
        for key, value in values.items():
            if value is not None and np.isfinite(float(value)):
                metrics[f"{prefix}/{key}"] = float(value)
    return metrics
