"""Every MLflow call of the analysis: find a study, read its trial runs, log an analysis run.

Kept in one module so that the next MLflow rename touches one file. The rest of the analysis
sees plain :class:`RunRecord` objects and paths.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from capstudy import keys
from capstudy.errors import CapstudyError
from capstudy.util import mlflow_client

_PAGE = 1000


@dataclass(frozen=True)
class RunRecord:
    """What the analysis needs of one MLflow run (metrics are final, last-step values)."""

    run_id: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]


@dataclass
class StudyRuns:
    """The finished trial runs of one study and a count of those skipped, by reason."""

    study: str
    experiment_id: str
    runs: list[RunRecord]
    skipped: Counter = field(default_factory=Counter)
    parent_run_id: str = ""
    n_launches: int = 0


def latest_study(tracking_uri: str) -> str:
    """Name of the study experiment whose parent (kind=study) run started last.

    Raises:
        CapstudyError: no experiment in the store holds a study run.
    """
    from mlflow.entities import ViewType

    client = mlflow_client(tracking_uri)
    experiments = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    best: tuple[int, str] | None = None
    for exp in experiments:
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`{keys.T_KIND}` = '{keys.KIND_STUDY}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs and (best is None or runs[0].info.start_time > best[0]):
            best = (runs[0].info.start_time, exp.name)
    if best is None:
        raise CapstudyError(
            f"no study found in {tracking_uri}: run `capstudy launch` first, or pass "
            "--tracking-uri / --from FILE"
        )
    return best[1]


def study_launches(tracking_uri: str, study: str) -> list[tuple[str, int]]:
    """The study's parent runs (one per launch) as ``(run_id, start_time)``, newest first."""
    client = mlflow_client(tracking_uri)
    exp = client.get_experiment_by_name(study)
    if exp is None:
        return []
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{keys.T_KIND}` = '{keys.KIND_STUDY}'",
        order_by=["attributes.start_time DESC"],
        max_results=_PAGE,
    )
    return [(r.info.run_id, r.info.start_time) for r in runs]


def resolve_parent(tracking_uri: str, study: str, parent: str | None) -> tuple[str, int]:
    """The launch to analyse: ``(parent_run_id, number of launches)``.

    Args:
        tracking_uri: MLflow tracking URI.
        study: the study (experiment) name.
        parent: ``latest`` (the newest parent run), a parent run id, or None/``all`` to read
            every trial run of the experiment whatever its launch.

    Returns:
        ``("", n)`` when every launch is read, or when ``latest`` finds no parent run (trials
        recorded by ``capstudy train`` have none).

    Raises:
        CapstudyError: ``parent`` names a run that is not a parent run of this study.
    """
    launches = study_launches(tracking_uri, study)
    if parent in (None, "", "all"):
        return "", len(launches)
    if parent == "latest":
        return (launches[0][0] if launches else ""), len(launches)
    if parent not in {run_id for run_id, _ in launches}:
        known = ", ".join(run_id for run_id, _ in launches) or "none"
        raise CapstudyError(
            f"--parent {parent}: not a launch (parent run, tag {keys.T_KIND}={keys.KIND_STUDY}) "
            f"of study {study!r} in {tracking_uri}; its launches, newest first: {known}"
        )
    return parent, len(launches)


def read_study_runs(tracking_uri: str, study: str, parent: str | None = "latest") -> StudyRuns:
    """The trial runs (kind=trial) of one launch of a study; only FINISHED ones are kept.

    MLflow's run data holds each metric's latest value (highest step, then latest time), which
    is the final epoch's value the analysis uses. A study launched twice without ``--resume``
    has two parent runs, each with its own trial runs; ``parent`` picks one
    (:func:`resolve_parent`), so the same trial never appears twice.

    Raises:
        CapstudyError: the experiment or the asked-for parent run does not exist.
    """
    client = mlflow_client(tracking_uri)
    exp = client.get_experiment_by_name(study)
    if exp is None:
        skip = {"Default", keys.PRETRAIN_EXPERIMENT}  # no trials: never a study
        names = sorted(e.name for e in client.search_experiments() if e.name not in skip)
        raise CapstudyError(
            f"no study named {study!r} in {tracking_uri} (studies: {', '.join(names) or 'none'}; "
            "`capstudy status` lists them)"
        )
    parent_id, n_launches = resolve_parent(tracking_uri, study, parent)
    out = StudyRuns(
        study=study,
        experiment_id=exp.experiment_id,
        runs=[],
        parent_run_id=parent_id,
        n_launches=n_launches,
    )
    query = f"tags.`{keys.T_KIND}` = '{keys.KIND_TRIAL}'"
    if parent_id:
        query += f" and tags.`{keys.T_PARENT_RUN}` = '{parent_id}'"
    token = None
    while True:
        page = client.search_runs(
            [exp.experiment_id],
            filter_string=query,
            max_results=_PAGE,
            page_token=token,
        )
        for run in page:
            status = run.info.status
            if status != "FINISHED":
                out.skipped[f"status {status}"] += 1
                continue
            out.runs.append(
                RunRecord(
                    run_id=run.info.run_id,
                    status=status,
                    params=dict(run.data.params),
                    tags=dict(run.data.tags),
                    metrics=dict(run.data.metrics),
                )
            )
        token = page.token
        if not token:
            return out


def log_analysis_run(
    tracking_uri: str,
    study: str,
    out_dir: Path,
    params: dict[str, str],
    metrics: dict[str, float],
) -> str:
    """Log an analysis run (tag kind=analysis) in the study's experiment; return its id.

    The output folder's files become the run's artifacts. The run is ended FINISHED, or
    FAILED if anything raises, so it is never left RUNNING.
    """
    client = mlflow_client(tracking_uri)
    exp = client.get_experiment_by_name(study)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(study)
    tags = {keys.T_KIND: keys.KIND_ANALYSIS, keys.T_STUDY: study, "mlflow.runName": "analysis"}
    run = client.create_run(exp_id, tags=tags)
    run_id = run.info.run_id
    try:
        from mlflow.entities import Metric, Param

        stamp = run.info.start_time
        client.log_batch(
            run_id,
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        )
        metric_items = [Metric(k, float(v), stamp, 0) for k, v in metrics.items()]
        for start in range(0, len(metric_items), 900):  # log_batch caps at 1000 metrics
            client.log_batch(run_id, metrics=metric_items[start : start + 900])
        client.log_artifacts(run_id, str(out_dir))
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
