"""One call for the whole analysis: :func:`analyze_study` writes what ``capstudy analyze`` does.

From a study in MLflow, a tidy table file, or a DataFrame in memory, to an output folder:
tables, figures, the paper's figures and tables, Pareto figures, cost, a report led by its
headline, and (unless ``log_mlflow=False``) an MLflow analysis run carrying them.
:func:`compare_studies` does the same for two studies and adds the difference of their gains.

``capstudy analyze`` only parses its options and calls these; a script or notebook gets the
same folder::

    from capstudy.analysis import analyze_study
    result = analyze_study("smoke", find_threshold=True)
    result.verdicts          # the headline, one line per comparison
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from capstudy.analysis import compare, headline, mlflow_io, pipeline, tables
from capstudy.analysis.pipeline import AnalysisOptions, AnalysisResult
from capstudy.analysis.results import load_from_mlflow
from capstudy.analysis.study_io import read_extras, set_report_note
from capstudy.errors import CapstudyError
from capstudy.paths import default_tracking_uri

Echo = Callable[[str], None]


def _silent(_: str) -> None:
    """The default ``echo``: a library call prints nothing."""


@dataclass
class StudyInput:
    """A study's tidy table and what came with it."""

    table: pd.DataFrame
    name: str
    source: str
    skipped: Counter | None = None
    extras: headline.Extras | None = None


def default_out_dir(study: str) -> Path:
    """``./capstudy_out/<study>/analysis-<timestamp>``: a new folder per run, never overwritten."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in study) or "study"
    return Path("capstudy_out") / safe / f"analysis-{stamp}"


def prepare_out_dir(out: str | Path | None, study: str, echo: Echo = _silent) -> Path:
    """The output folder; an explicit one that holds an earlier report is replaced, loudly."""
    if out is None:
        path = default_out_dir(study)
    else:
        path = Path(out)
        if (path / "report.md").exists():
            echo(f"Replacing the earlier analysis in {path}")
            for sub in ("tables", "figures"):
                for old in (path / sub).glob("*"):
                    old.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_study(
    study: str | None = None,
    *,
    table: pd.DataFrame | None = None,
    from_file: str | Path | None = None,
    tracking_uri: str | None = None,
    parent: str = "latest",
    echo: Echo = _silent,
) -> StudyInput:
    """The tidy table of a DataFrame, a ``.csv``/``.parquet`` file, or a study in MLflow.

    Raises:
        CapstudyError: both ``table`` and ``from_file`` given; an unreadable file; no such
            study or launch in the store.
    """
    if table is not None and from_file is not None:
        raise CapstudyError("give the analysis a table or a file (from_file), not both")
    if table is not None:
        table = tables.normalize(table, source="table", study=study or "")
        return StudyInput(table, study or str(table["study"].iloc[0]) or "study", "table")
    if from_file is not None:
        table = tables.read_table(from_file, study=study)
        name = study or str(table["study"].iloc[0]) or Path(from_file).stem
        return StudyInput(table, name, str(from_file))
    uri = tracking_uri or default_tracking_uri()
    loaded = load_from_mlflow(uri, study, parent)
    if study is None:
        echo(f"Using the most recent study: {loaded.study}")
    if loaded.n_launches > 1 and loaded.parent_run_id:
        echo(
            f"The study was launched {loaded.n_launches} times; analysing launch "
            f"{loaded.parent_run_id} (--parent RUN_ID picks another)"
        )
    for why, n in sorted(loaded.skipped.items()):
        echo(f"Skipped {n} trial run(s): {why}")
    source = f"MLflow {uri}, experiment {loaded.study!r}" + _launch_text(loaded)
    extras = read_extras(uri, loaded.study)
    return StudyInput(loaded.table, loaded.study, source, loaded.skipped, extras)


def _launch_text(loaded) -> str:
    if loaded.parent_run_id:
        return f", launch (parent run) {loaded.parent_run_id} of {loaded.n_launches}"
    return ", every launch" if loaded.n_launches > 1 else ""


def _options(options: AnalysisOptions | None, values: dict) -> AnalysisOptions:
    if options is not None and values:
        raise CapstudyError(f"give options or {', '.join(values)}, not both")
    options = options or AnalysisOptions(**values)
    if options.n_boot < 100:
        raise CapstudyError(f"--bootstrap {options.n_boot}: use at least 100 replicates")
    return options


def analyze_study(
    study: str | None = None,
    *,
    table: pd.DataFrame | None = None,
    from_file: str | Path | None = None,
    tracking_uri: str | None = None,
    parent: str = "latest",
    out: str | Path | None = None,
    options: AnalysisOptions | None = None,
    log_mlflow: bool = True,
    export: str | Path | None = None,
    echo: Echo = _silent,
    **option_values,
) -> AnalysisResult:
    """Analyze one study and write everything ``capstudy analyze`` writes.

    Args:
        study: the study (MLflow experiment) name; None: the latest study in the store, or
            the name recorded in ``table``/``from_file``.
        table: a tidy table in memory (instead of MLflow).
        from_file: a tidy table as ``.csv``/``.parquet`` (instead of MLflow).
        tracking_uri: the MLflow store (default: ``$MLFLOW_TRACKING_URI``, else capstudy's).
        parent: which launch: ``latest``, a parent run id, or ``all``.
        out: the output folder (default ``./capstudy_out/<study>/analysis-<time>``).
        options: an :class:`AnalysisOptions`; or give its fields as keywords
            (``find_threshold=True``, ``capacity="macs"``, ``n_boot=200``, ...).
        log_mlflow: log the folder as an analysis run in the study's experiment.
        export: also write the tidy table to this ``.csv``/``.parquet``.
        echo: where progress lines go (the CLI prints them; default: nowhere).

    Returns:
        The :class:`AnalysisResult`: tables, ``verdicts`` (the headline), files, ``run_id``.

    Raises:
        CapstudyError: bad input, named with its file, column or option.
    """
    options = _options(options, option_values)
    loaded = load_study(
        study,
        table=table,
        from_file=from_file,
        tracking_uri=tracking_uri,
        parent=parent,
        echo=echo,
    )
    if export is not None:
        echo(f"Wrote the tidy table to {tables.write_table(loaded.table, export)}")
    out_dir = prepare_out_dir(out, loaded.name, echo)
    result = pipeline.run_analysis(
        loaded.table, loaded.name, out_dir, options, loaded.source, loaded.skipped, loaded.extras
    )
    if log_mlflow:
        uri = tracking_uri or default_tracking_uri()
        result.run_id = mlflow_io.log_analysis_run(
            uri,
            loaded.name,
            out_dir,
            run_params(options, loaded.source, result),
            pipeline.mlflow_metrics(result),
        )
        set_report_note(uri, result.run_id, out_dir / "report.md")
    return result


def run_params(options: AnalysisOptions, source: str, result: AnalysisResult) -> dict[str, str]:
    """The analysis run's MLflow params."""
    return {
        "source": source,
        "metric": result.metric,
        "mode": result.mode,
        "capacity": result.capacity,
        "find_threshold": str(options.find_threshold),
        "bootstrap": str(options.n_boot),
        "seed": str(options.seed),
        "alpha": str(options.alpha),
    }


def compare_studies(
    studies: list[str] | None = None,
    *,
    from_files: list[str | Path] | None = None,
    tracking_uri: str | None = None,
    out: str | Path | None = None,
    options: AnalysisOptions | None = None,
    echo: Echo = _silent,
    **option_values,
) -> tuple[list[AnalysisResult], pd.DataFrame, Path]:
    """Analyze two studies each on its own, then the difference of their gains.

    Each study's full analysis goes to ``<out>/<study>/``; ``tables/differences.csv`` and a
    report of the differences to ``<out>``. Comparisons are not logged to MLflow.

    Returns:
        The two results, the differences table and the output folder.

    Raises:
        CapstudyError: not exactly two studies or files, or bad input.
    """
    options = _options(options, option_values)
    files, names_in = list(from_files or []), list(studies or [])
    if len(files) + len(names_in) != 2:
        raise CapstudyError(
            f"a comparison takes exactly two studies or files, got {len(files) + len(names_in)}"
        )
    inputs = [load_study(from_file=path) for path in files]
    inputs += [load_study(n, tracking_uri=tracking_uri, echo=echo) for n in names_in]
    names = (inputs[0].name, inputs[1].name)
    if names[0] == names[1]:
        names = (f"{names[0]}-A", f"{names[1]}-B")
    root = prepare_out_dir(out, f"{names[0]}-vs-{names[1]}", echo)
    results = [
        pipeline.run_analysis(
            one.table, name, root / name, options, one.source, one.skipped, one.extras
        )
        for one, name in zip(inputs, names, strict=True)
    ]
    diff = compare.gain_differences(results[0].per_seed, results[1].per_seed, results[0].capacity)
    compare.write_comparison(
        diff, names, results[0].metric, root, [root / n / "report.html" for n in names]
    )
    return results, diff, root
