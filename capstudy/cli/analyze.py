"""``capstudy analyze``: results table, gains, capacity threshold, figures, report, MLflow run.

Heavy imports (pandas, matplotlib, mlflow) happen inside the command so ``capstudy --help``
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from capstudy.cli.options import TrackingUri


def register(app: typer.Typer) -> None:
    """Add ``capstudy analyze``."""

    @app.command("analyze")
    def analyze(
        names: Annotated[
            list[str] | None,
            typer.Argument(
                help="Study name(s), as `capstudy status` takes them (the same as --study).",
                show_default=False,
            ),
        ] = None,
        study: Annotated[
            list[str] | None,
            typer.Option(help="Study (MLflow experiment) name; default: latest. Twice: compare."),
        ] = None,
        tracking_uri: TrackingUri = None,
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
            str | None,
            typer.Option(
                help="Direction of the study metric, max|min (default: the study's recorded "
                "mode, else from the metric's name)."
            ),
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

        Writes CSV tables, PNG figures, the paper's figures and tables, Pareto figures and
        report.md/report.html to the output folder and, unless --no-mlflow, logs them as an
        analysis run in the study's MLflow experiment
        (capstudy.analysis.analyze_study does the same from Python).
        """
        from capstudy.analysis import api, headline, report
        from capstudy.analysis.pipeline import AnalysisOptions

        study = [*(names or []), *(study or [])] or None

        options = AnalysisOptions(
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
            _compare(from_file or [], study or [], tracking_uri, out, options)
            return
        result = api.analyze_study(
            study[0] if study else None,
            from_file=from_file[0] if from_file else None,
            tracking_uri=tracking_uri,
            parent=parent,
            out=out,
            options=options,
            log_mlflow=not no_mlflow,
            export=export,
            echo=typer.echo,
        )
        if result.pooled is not None:
            typer.echo(report.shared_statement(result.pooled, result.contrasts, result.metric))
        for line in headline.verdict_lines(result.verdicts):
            typer.echo("- " + line)
        out_dir = result.out_dir
        typer.echo(f"Report: {out_dir / 'report.html'} (and report.md, tables/, figures/, paper/)")
        if result.run_id is not None:
            from capstudy.paths import default_tracking_uri

            uri = tracking_uri or default_tracking_uri()
            typer.echo(f"Logged MLflow run {result.run_id} (experiment {result.study!r}, {uri})")


def _compare(files: list[Path], studies: list[str], uri: str | None, out: Path | None, options):
    """Analyze two studies each on its own, then the difference of their gains."""
    from capstudy.analysis import api

    _, diff, root = api.compare_studies(
        studies, from_files=files, tracking_uri=uri, out=out, options=options, echo=typer.echo
    )
    for _, r in diff.iterrows():
        typer.echo(
            f"- {r['label']} {r['init']} {r['train_domain']} -> {r['eval_domain']}: "
            f"difference {r['difference']:+.4f} (95% CI {r['ci_lo']:+.4f} to "
            f"{r['ci_hi']:+.4f})"
        )
    typer.echo(f"Comparison report: {root / 'report.html'} (each study's report under {root}/)")
