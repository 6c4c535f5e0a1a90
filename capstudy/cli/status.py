"""``capstudy ls`` and ``capstudy status``: every study at a glance, one study in detail.

Both only read the tracking store and Ray's experiment folders, so they work from another
terminal while a study runs, and after it ends. ``--json`` prints the same facts for scripts.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from capstudy.cli.options import TrackingUri
from capstudy.errors import CapstudyError
from capstudy.status import text as studytext
from capstudy.status.looks import sequential_lines

_STORAGE_HELP = (
    "Ray Tune storage (path or URI) the launch used; default: the one its launch recorded."
)


def register(app: typer.Typer) -> None:
    """Add ``capstudy ls`` and ``capstudy status``."""

    @app.command("ls")
    def ls(
        tracking_uri: TrackingUri = None,
        storage: Annotated[
            str | None, typer.Option(help=_STORAGE_HELP + " Lists its studies too.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Every study in the tracking store and in ray_results: launches, state, trials."""
        from capstudy.paths import default_tracking_uri
        from capstudy.status.view import list_studies

        rows = list_studies(tracking_uri or default_tracking_uri(), storage)
        if as_json:
            typer.echo(json.dumps(rows, indent=1))
            return
        if not rows:
            typer.echo("no studies yet: start one with `capstudy launch --space smoke`")
            return
        head = ("study", "launches", "state", "done", "stopped", "running", "failed", "last")
        body = [
            (
                r["study"],
                r["launches"],
                r["state"],
                r["done"],
                r["stopped"],
                r["running"],
                r["failed"],
                r["last_activity"],
            )
            for r in rows
        ]
        typer.echo(studytext.text_table(head, body))

    @app.command("status")
    def status(
        study: Annotated[
            str | None, typer.Argument(help="Study name; default: the latest study.")
        ] = None,
        tracking_uri: TrackingUri = None,
        storage: Annotated[str | None, typer.Option(help=_STORAGE_HELP)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """One study's progress by variant x init, its failures by cause, and what to run next."""
        from capstudy.paths import default_tracking_uri

        uri = tracking_uri or default_tracking_uri()
        report = study_report(uri, study, storage)
        if as_json:
            typer.echo(json.dumps(report, indent=1, default=str))
        else:
            typer.echo(render_report(report))


def study_report(uri: str, study: str | None, storage: str | None = None) -> dict:
    """Everything ``status`` shows, as plain data.

    ``storage``: Ray storage (path or URI); None: where the study's latest launch ran.

    Raises:
        CapstudyError: no such study, or no study at all.
    """
    from capstudy.status.causes import count_causes
    from capstudy.status.view import failures, list_studies, study_state, variant_rows

    if study is None:
        known = [r for r in list_studies(uri) if r["in_mlflow"]]
        if not known:
            raise CapstudyError(f"no study in {uri}: start one with `capstudy launch --space NAME`")
        study = known[0]["study"]
    st = study_state(uri, study, storage)
    if st is None or not st.launches:
        names = ", ".join(r["study"] for r in list_studies(uri)) or "none"
        raise CapstudyError(f"no study {study!r} in {uri} (studies: {names})")
    spec = _load_spec(st.study_file)
    mode = spec.mode if spec is not None else "max"
    rows = variant_rows(st, mode, _cell_totals(spec, st))
    return {
        "study": st.study,
        "state": st.state,
        "metric": st.metric,
        "mode": mode,
        "launches": len(st.launches),
        "parent_run_id": st.launches[0]["run_id"],
        "trials": st.counts(),
        "variants": rows,
        "failures": failures(st),
        # Ray's retries of trials (a lost node, out of memory, ...), summed by cause.
        "retries": [
            {"cause": cause, "count": n}
            for cause, n in count_causes([t.retries for t in st.trials])
        ],
        "sequential": st.sequential,
        "next": next_commands(st),
    }


def _load_spec(study_file: str):
    """The study file the launch ran, when it is still readable (totals, mode)."""
    if not study_file:
        return None
    from capstudy.study import load_study

    try:
        return load_study(study_file)
    except (CapstudyError, OSError):
        return None


def _cell_totals(spec, st) -> dict | None:
    """{(label, init, train or ''): cells} from the study file, matching variant rows."""
    if spec is None:
        return None
    from capstudy.study.cells import expand_cells
    from capstudy.study.plan import cell_capacity

    many = len({t.train_domain for t in st.trials}) > 1
    totals: dict[tuple, int] = {}
    for cell in expand_cells(spec):
        values = {**spec.fixed, **cell.values}
        label = cell_capacity(spec, cell)[2]
        key = (label, str(values.get("init", "random")), values.get("train", "") if many else "")
        totals[key] = totals.get(key, 0) + 1
    return totals


def next_commands(st) -> list[str]:
    """What to run next, from the latest launch's state."""
    from capstudy.status.causes import retry_hint
    from capstudy.status.view import failures

    space = st.study_file or st.study
    counts = st.counts()
    if st.state == "RUNNING":
        return [f"capstudy status {st.study}   # still running; check again later"]
    out = []
    if st.state in ("KILLED", "INTERRUPTED") or counts["killed"] or counts["running"]:
        out.append(f"capstudy launch --space {space} --resume")
    if counts["failed"]:
        out.append(f"capstudy launch --retry-failed {st.study}   # after fixing the cause")
        hint = retry_hint(st.study, [f["cause"] for f in failures(st)])
        if hint:
            out.append(hint)
    if counts["done"] + counts["stopped"]:
        out.append(f"capstudy analyze --study {st.study} --find-threshold")
    return out


def render_report(report: dict) -> str:
    """The text ``capstudy status`` prints."""
    c = report["trials"]
    lines = [
        f"study {report['study']}: {report['state']} (launch {report['launches']}, parent run "
        f"{report['parent_run_id']})",
        f"trials: {c['done']} done, {c['stopped']} stopped early, {c['running']} running, "
        f"{c['failed']} failed, {c['killed']} killed",
        "",
        studytext.variant_table(report["variants"], report["metric"], [], progress=True)
        if report["variants"]
        else "no trial has started yet (pretraining, or waiting for resources)",
    ]
    if report.get("sequential"):
        lines += ["", *sequential_lines(report["sequential"])]
    if report["failures"]:
        lines += ["", "failures by cause:"]
        for f in report["failures"]:
            shown = ", ".join(f["trials"][:3]) + (" ..." if f["count"] > 3 else "")
            lines.append(f"  {f['count']} x {f['cause']}  ({shown})")
    if report.get("retries"):
        lines += ["", "retries by cause (each from the trial's last checkpoint):"]
        lines += [f"  {r['count']} x {r['cause']}" for r in report["retries"]]
    lines += ["", "next:", *(f"  {cmd}" for cmd in report["next"])]
    return "\n".join(lines)
