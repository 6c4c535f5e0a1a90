"""``capstudy analyze``: results table, gains, capacity threshold, figures, report, MLflow run.

Heavy imports (pandas, matplotlib, mlflow) happen inside the command so ``capstudy --help``
stays fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from capstudy.errors import CapstudyError


def default_out_dir(study: str) -> Path:
    """``./capstudy_out/<study>/analysis-<timestamp>``: a new folder per run, never overwritten."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in study) or "study"
    return Path("capstudy_out") / safe / f"analysis-{stamp}"


def register(app: typer.Typer) -> None:
    """Add ``capstudy analyze``."""

    @app.command("analyze")
    def analyze(
        study: Annotated[
            list[str] | None,
            typer.Option(help="Study (MLflow experiment) name; default: latest. Twice: compare."),
        ] = None,
        tracking_uri: Annotated[
            str | None, typer.Option(help="MLflow tracking URI; default: capstudy's store.")
        ] = None,
        parent: Annotated[
            str,
            typer.Option(
                help="Which launch: latest (the newest parent run of the study), a parent "
                "run id, or all (every launch; an error if a trial is in two of them)."
            ),
        ] = "latest",
        from_file: Annotated[
            list[Path] | None,
            typer.Option(
                "--from", help="Read the tidy table from a .csv/.parquet file. Twice: compare."
            ),
        ] = None,
        export: Annotated[
            Path | None, typer.Option(help="Also write the tidy table to this .csv/.parquet.")
        ] = None,
        find_threshold: Annotated[
            bool, typer.Option("--find-threshold", help="Fit the capacity threshold.")
        ] = False,
        capacity: Annotated[
            str, typer.Option(help="Capacity axis: backbone | detector | macs.")
        ] = "backbone",
        metric: Annotated[
            str | None, typer.Option(help="Evaluation metric (default: the study metric).")
        ] = None,
        mode: Annotated[
            str | None, typer.Option(help="Selection mode max|min (default: from the metric).")
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(help="Output folder (default ./capstudy_out/<study>/analysis-<time>)."),
        ] = None,
        bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 1000,
        seed: Annotated[int, typer.Option(help="Random seed of the bootstraps.")] = 0,
        plateau_margin: Annotated[
            float,
            typer.Option(help="Equivalence margin of 'the gain vanishes' (metric units)."),
        ] = 0.02,
        decade_margin: Annotated[
            float,
            typer.Option(help="Equivalence margin of 'the breakpoint is shared' (decades)."),
        ] = 0.3,
        no_mlflow: Annotated[
            bool, typer.Option("--no-mlflow", help="Do not log an analysis run to MLflow.")
        ] = False,
    ) -> None:
        """Analyze a study: select trials, compute gains over random init, fit the threshold.

        Writes CSV tables, PNG figures and report.md/report.html to the output folder and,
        unless --no-mlflow, logs them as an analysis run in the study's MLflow experiment.
        """
        from capstudy.analysis import headline, mlflow_io, pipeline, report, tables
        from capstudy.analysis.study_io import read_extras, set_report_note
        from capstudy.paths import default_tracking_uri

        if bootstrap < 100:
            raise CapstudyError(f"--bootstrap {bootstrap}: use at least 100 replicates")
        uri = tracking_uri or default_tracking_uri()
        options = pipeline.AnalysisOptions(
            capacity=capacity,
            metric=metric,
            find_threshold=find_threshold,
            n_boot=bootstrap,
            seed=seed,
            mode=mode,
            plateau_margin=plateau_margin,
            decade_margin=decade_margin,
        )
        if len([*(from_file or []), *(study or [])]) > 1:
            _compare(from_file or [], study or [], uri, out, options)
            return
        study = study[0] if study else None
        from_file = from_file[0] if from_file else None
        table, name, source, skipped = _load(from_file, study, uri, parent)
        if export is not None:
            typer.echo(f"Wrote the tidy table to {tables.write_table(table, export)}")
        out_dir = _prepare_out_dir(out, name)
        result = pipeline.run_analysis(table, name, out_dir, options, source, skipped)
        extras = headline.Extras() if from_file is not None else read_extras(uri, name)
        headline.finish(result, extras, _mode_of(result, mode))
        if result.pooled is not None:
            typer.echo(report.shared_statement(result.pooled, result.contrasts, result.metric))
        for line in headline.verdict_lines(headline.verdict_table(result.fits)):
            typer.echo("- " + line)
        typer.echo(f"Report: {out_dir / 'report.html'} (and report.md, tables/, figures/, paper/)")
        if not no_mlflow:
            run_id = mlflow_io.log_analysis_run(
                uri,
                name,
                out_dir,
                _run_params(options, source, result),
                pipeline.mlflow_metrics(result),
            )
            set_report_note(uri, run_id, out_dir / "report.md")
            typer.echo(f"Logged MLflow run {run_id} (experiment {name!r}, {uri})")


def _load(from_file: Path | None, study: str | None, uri: str, parent: str):
    """The tidy table, study name, source text and skipped-run counts (None for a file)."""
    from capstudy.analysis import tables
    from capstudy.analysis.results import load_from_mlflow

    if from_file is not None:
        table = tables.read_table(from_file, study=study)
        return table, study or str(table["study"].iloc[0]) or from_file.stem, str(from_file), None
    loaded = load_from_mlflow(uri, study, parent)
    name = loaded.study
    if study is None:
        typer.echo(f"Using the most recent study: {name}")
    if loaded.n_launches > 1 and loaded.parent_run_id:
        typer.echo(
            f"The study was launched {loaded.n_launches} times; analysing launch "
            f"{loaded.parent_run_id} (--parent RUN_ID picks another)"
        )
    for why, n in sorted(loaded.skipped.items()):
        typer.echo(f"Skipped {n} trial run(s): {why}")
    source = f"MLflow {uri}, experiment {name!r}" + _launch_text(loaded)
    return loaded.table, name, source, loaded.skipped


def _launch_text(loaded) -> str:
    if loaded.parent_run_id:
        return f", launch (parent run) {loaded.parent_run_id} of {loaded.n_launches}"
    return ", every launch" if loaded.n_launches > 1 else ""


def _prepare_out_dir(out: Path | None, study: str) -> Path:
    """The output folder; an explicit one that holds an earlier report is replaced, loudly."""
    if out is None:
        path = default_out_dir(study)
    else:
        path = out
        if (path / "report.md").exists():
            typer.echo(f"Replacing the earlier analysis in {path}")
            for sub in ("tables", "figures"):
                for old in (path / sub).glob("*"):
                    old.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_params(options, source: str, result) -> dict[str, str]:
    return {
        "source": source,
        "metric": result.metric,
        "capacity": result.capacity,
        "find_threshold": str(options.find_threshold),
        "bootstrap": str(options.n_boot),
        "seed": str(options.seed),
        "alpha": str(options.alpha),
    }


def _mode_of(result, mode: str | None) -> str:
    """Direction of the analyzed metric (loss-like names are minimized)."""
    if mode:
        return mode
    return "min" if any(w in result.metric for w in ("loss", "error")) else "max"


def _compare(files: list[Path], studies: list[str], uri: str, out: Path | None, options) -> None:
    """Analyze two studies each on its own, then the difference of their gains."""
    from capstudy.analysis import compare, headline, pipeline, tables
    from capstudy.analysis.results import load_from_mlflow
    from capstudy.analysis.study_io import read_extras

    if len(files) + len(studies) != 2:
        raise CapstudyError(
            f"a comparison takes exactly two studies or files, got {len(files) + len(studies)}"
        )
    loaded = []
    for path in files:
        table = tables.read_table(path)
        loaded.append((table, str(table["study"].iloc[0]) or path.stem, str(path), None, None))
    for name in studies:
        res = load_from_mlflow(uri, name)
        loaded.append((res.table, res.study, f"MLflow {uri}", res.skipped, read_extras(uri, name)))
    names = (loaded[0][1], loaded[1][1])
    if names[0] == names[1]:
        names = (f"{names[0]}-A", f"{names[1]}-B")
    root = _prepare_out_dir(out, f"{names[0]}-vs-{names[1]}")
    results = []
    for (table, _, source, skipped, extras), name in zip(loaded, names, strict=True):
        result = pipeline.run_analysis(table, name, root / name, options, source, skipped)
        headline.finish(result, extras, _mode_of(result, options.mode))
        results.append(result)
    diff = compare.gain_differences(results[0].per_seed, results[1].per_seed, results[0].capacity)
    compare.write_comparison(
        diff, names, results[0].metric, root, [root / n / "report.html" for n in names]
    )
    for _, r in diff.iterrows():
        typer.echo(
            f"- {r['label']} {r['init']} {r['train_domain']} -> {r['eval_domain']}: "
            f"difference {r['difference']:+.4f} (95% CI {r['ci_lo']:+.4f} to "
            f"{r['ci_hi']:+.4f})"
        )
    typer.echo(f"Comparison report: {root / 'report.html'} (each study's report under {root}/)")
