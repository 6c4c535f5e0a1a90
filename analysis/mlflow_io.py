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


def read_study_runs(tracking_uri: str, study: str) -> StudyRuns:
    """All trial runs (kind=trial) of a study's experiment; only FINISHED ones are kept.

    MLflow's run data holds each metric's latest value (highest step, then latest time), which
    is the final epoch's value the analysis uses.

    Raises:
        CapstudyError: the experiment does not exist.
    """
    client = mlflow_client(tracking_uri)
    exp = client.get_experiment_by_name(study)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise CapstudyError(
            f"no experiment named {study!r} in {tracking_uri} (experiments: "
            f"{', '.join(names) or 'none'})"
        )
    out = StudyRuns(study=study, experiment_id=exp.experiment_id, runs=[])
    token = None
    while True:
        page = client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`{keys.T_KIND}` = '{keys.KIND_TRIAL}'",
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
