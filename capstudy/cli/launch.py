"""``capstudy launch``: run a study (Ray Tune + MLflow), plan it, or resume it."""

from __future__ import annotations

from typing import Annotated

import typer

from capstudy.cli.options import TrackingUri


def register(app: typer.Typer) -> None:
    """Add ``capstudy launch``."""

    @app.command("launch")
    def launch(
        space: Annotated[
            str | None,
            typer.Option("--space", help="Study name in search_spaces/ or a YAML path."),
        ] = None,
        address: Annotated[
            str | None,
            typer.Option(help="Ray cluster address ('auto' inside a cluster); default: local."),
        ] = None,
        tracking_uri: TrackingUri = None,
        storage: Annotated[
            str | None,
            typer.Option(
                help="Ray Tune storage: a path, or a URI such as s3://bucket/ray_results "
                "(shared storage for clusters; docs/guide/scaling-out.md)."
            ),
        ] = None,
        resume: Annotated[
            bool, typer.Option(help="Finish an interrupted study without redoing trials.")
        ] = False,
        dry_run: Annotated[
            bool, typer.Option(help="Print the plan (cells, trials, pretraining) and exit.")
        ] = False,
        max_concurrent: Annotated[
            int | None, typer.Option(help="Cap on trials running at once.")
        ] = None,
        max_failures: Annotated[
            int, typer.Option(help="Retries of a failed trial, from its last checkpoint.")
        ] = 2,
        hpo_seed: Annotated[
            int, typer.Option("--hpo-seed", help="Seed of the HPO samplers (not a trial seed).")
        ] = 0,
        old_seed: Annotated[
            int | None, typer.Option("--seed", hidden=True, help="Former name of --hpo-seed.")
        ] = None,
        retry_failed: Annotated[
            str | None,
            typer.Option(
                "--retry-failed",
                metavar="STUDY",
                help="Rerun only the FAILED trials of STUDY's latest launch (same parent run).",
            ),
        ] = None,
        retry_batch_size: Annotated[
            int | None,
            typer.Option(
                "--retry-batch-size",
                metavar="N",
                help="With --retry-failed: the failed trials rerun with batch size N (after "
                "out of memory; their runs are tagged with it).",
            ),
        ] = None,
        devices: Annotated[
            int | None,
            typer.Option(help="Devices (GPUs, or CPU cores) for --dry-run's wall-time estimate."),
        ] = None,
    ) -> None:
        """Launch a capacity study: pretraining first, then every trial under Ray Tune.

        Grid dims make cells; HPO dims are sampled inside each cell; ASHA stops weak trials
        within their own cell. Every trial is an MLflow child run of the study's parent run.
        """
        import warnings

        from capstudy.launch.driver import LaunchOptions
        from capstudy.launch.driver import launch as run_launch
        from capstudy.launch.quiet import quiet_third_parties
        from capstudy.study import StudyWarning
        from capstudy.util import console as make_console

        # The driver prints the study's warnings itself; don't show them twice.
        warnings.simplefilter("ignore", StudyWarning)
        quiet_third_parties()
        console = make_console()
        space = _space_for(space, retry_failed, tracking_uri)
        try:
            outcome = run_launch(
                LaunchOptions(
                    space=space,
                    address=address,
                    tracking_uri=tracking_uri,
                    storage=storage,
                    resume=resume,
                    dry_run=dry_run,
                    max_concurrent=max_concurrent,
                    max_failures=max_failures,
                    seed=hpo_seed if old_seed is None else old_seed,
                    retry_failed=retry_failed is not None,
                    retry_batch_size=retry_batch_size,
                    devices=devices,
                ),
                console,
            )
        except KeyboardInterrupt:
            # Runs are already ended KILLED by the driver; say how to finish the study.
            console.print(f"interrupted; finish it with: capstudy launch --space {space} --resume")
            raise typer.Exit(130) from None
        if outcome.status == "PLANNED":
            return
        # A sequential study runs only the looks it needs: trials_total is its most.
        total = (
            f" of at most {outcome.trials_total}" if outcome.looks else f"/{outcome.trials_total}"
        )
        done = f"{outcome.trials_done}{total}"
        console.print(
            f"study {outcome.study}: {outcome.status}; {done} trials done, "
            f"{outcome.trials_failed} failed; "
            + (f"{outcome.looks}; " if outcome.looks else "")
            + f"MLflow parent run {outcome.parent_run_id}"
        )
        if outcome.status == "KILLED":
            console.print(f"finish it with: capstudy launch --space {space} --resume")
            raise typer.Exit(130)
        if outcome.trials_failed:
            raise typer.Exit(1)


def _space_for(space: str | None, retry_failed: str | None, tracking_uri: str | None) -> str:
    """``--space``, or for ``--retry-failed STUDY`` the study file its latest launch ran."""
    from capstudy.errors import CapstudyError

    if retry_failed is None:
        if space is None:
            raise CapstudyError("capstudy launch needs --space NAME|PATH (or --retry-failed STUDY)")
        return space
    from capstudy.launch.summary import retry_space
    from capstudy.paths import default_tracking_uri

    found = retry_space(tracking_uri or default_tracking_uri(), retry_failed)
    return space or found
