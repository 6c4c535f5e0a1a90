"""MLflow in one place: store set-up, run life cycle, and what every trial run records.

The rest of capstudy calls these helpers instead of MLflow's API, so an MLflow rename
touches this module (and :mod:`capstudy.registry` for the model registry). Every key comes
from :mod:`capstudy.keys`.

Run life cycle: :func:`run` ends a run FINISHED on success, KILLED on Ctrl-C
(KeyboardInterrupt) and FAILED on any other exception, so no run is left RUNNING by a
Python-level failure. A process killed with SIGKILL cannot end its run; the launcher's
``--resume`` finds such runs by their trial id and continues them (no duplicates).
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag

from capstudy import keys, paths
from capstudy.config import TrialConfig
from capstudy.errors import CapstudyError
from capstudy.util import mlflow_client

# MLflow rejects param values longer than this; longer values (domain lists) are cut with a
# marker rather than failing the run.
_MAX_PARAM = 6000


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow at ``tracking_uri`` (default: SQLite in the capstudy home) and return it."""
    uri = tracking_uri or paths.default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


#: A client for a tracking URI (default: the home store); the one helper, in capstudy.util.
client = mlflow_client


def _is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def experiment_id(name: str, tracking_uri: str | None = None) -> str:
    """Id of experiment ``name``, created if missing.

    With a local store (SQLite/file) artifacts go to ``<home>/mlartifacts/<name>``; with an
    ``http`` server the server's ``--default-artifact-root`` decides.
    """
    uri = tracking_uri or paths.default_tracking_uri()
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if _is_local_store(uri):
        location = (paths.default_artifact_root() / name).as_uri()
    try:
        return c.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        # Another process created it between our lookup and create.
        return c.get_experiment_by_name(name).experiment_id


@functools.cache
def git_commit() -> str:
    """Commit of the capstudy source tree, ``+dirty`` when modified; ``unknown`` outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}{'+dirty' if dirty else ''}" if sha else "unknown"


def _param_str(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."


def trial_params(config: TrialConfig, label: str) -> dict[str, str]:
    """Params of a trial run: the design columns by their keys, HPO values as ``hpo/<name>``."""
    params = {name: _param_str(value) for name, value in config.to_dict().items()}
    params.update(
        {
            keys.P_LABEL: label,
            keys.P_EVAL_DOMAINS: _param_str(config.eval_domains),
            keys.P_WIDTH_MULT: _param_str(config.width) if config.is_free_scale else "",
            keys.P_DEPTH_MULT: _param_str(config.depth) if config.is_free_scale else "",
            keys.P_RESOLUTION: _param_str(config.variant_resolution),
            keys.P_INPUT_SIZE: _param_str(config.input_size),
        }
    )
    for name in config.hpo_keys:
        params[f"{keys.P_HPO_PREFIX}{name}"] = _param_str(getattr(config, name))
    return {k: v for k, v in params.items() if v != ""}


def trial_tags(
    config: TrialConfig,
    *,
    kind: str = keys.KIND_TRIAL,
    study: str | None = None,
    cell: str | None = None,
    trial_id: str | None = None,
    data_fingerprint: str | None = None,
    parent_run_id: str | None = None,
) -> dict[str, str]:
    """Tags of a trial run (study/cell/trial ids, commit, config hash, data fingerprint)."""
    from capstudy.capacity import CAPACITY_CONVENTION

    tags = {
        keys.T_KIND: kind,
        keys.T_GIT_COMMIT: git_commit(),
        keys.T_CONFIG_HASH: config.config_hash(),
        keys.T_CAPACITY_CONVENTION: CAPACITY_CONVENTION,
        keys.T_STUDY: study,
        keys.T_CELL: cell,
        keys.T_TRIAL_ID: trial_id,
        keys.T_DATA_FINGERPRINT: data_fingerprint,
        keys.T_PARENT_RUN: parent_run_id,
    }
    tags.update(class_set_tags(config))
    return {k: str(v) for k, v in tags.items() if v is not None}


def init_tags(ref: Any) -> dict[str, str]:
    """Lineage tags of a trial whose init came from registered weights (a ``WeightsRef``)."""
    return {
        keys.T_INIT_MODEL: str(ref.name),
        keys.T_INIT_VERSION: str(ref.version),
        keys.T_INIT_RUN_ID: str(ref.run_id),
    }


def class_set_tags(config: TrialConfig) -> dict[str, str]:
    """``capstudy.class_set.<domain>``: the classes each domain's detection metrics cover."""
    from capstudy.data.domains import eval_class_sets

    try:
        overrides = dict(config.dataset_classes)
        sets = eval_class_sets(config.train_domain, config.eval_domains, overrides)
    except CapstudyError:
        return {}  # a bad dataset_classes: the trial itself stops with the message
    return {keys.class_set_tag(d): ",".join(classes) for d, classes in sets.items()}


def log_params(run_id: str, params: Mapping[str, Any], tracking_uri: str | None = None) -> None:
    """Log params in one batch (skipping ones the run already has, so a resumed run is OK)."""
    c = client(tracking_uri)
    existing = c.get_run(run_id).data.params
    new = [Param(k, _param_str(v)) for k, v in params.items() if k not in existing]
    for start in range(0, len(new), 100):  # MLflow caps a batch at 100 params
        c.log_batch(run_id, params=new[start : start + 100])


def log_metrics(
    run_id: str, metrics: Mapping[str, float], step: int, tracking_uri: str | None = None
) -> None:
    """Log numeric metrics at ``step`` in one batch (non-numeric values are skipped)."""
    import time

    now = int(time.time() * 1000)
    batch = [
        Metric(k, float(v), now, step)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    c = client(tracking_uri)
    for start in range(0, len(batch), 1000):
        c.log_batch(run_id, metrics=batch[start : start + 1000])


def log_metric_rows(
    run_id: str, rows: list[tuple[str, float, int, int]], tracking_uri: str | None = None
) -> None:
    """Log ``(key, value, timestamp_ms, step)`` rows as given (batches of 1000).

    Unlike :func:`log_metrics` the caller fixes the timestamps, so logging the same rows again
    adds nothing (the store skips a row equal to one it holds): the launcher's tracking sink
    retries and replays writes this way.
    """
    batch = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in rows]
    c = client(tracking_uri)
    for start in range(0, len(batch), 1000):
        c.log_batch(run_id, metrics=batch[start : start + 1000])


def set_tags(run_id: str, tags: Mapping[str, str], tracking_uri: str | None = None) -> None:
    """Set tags on a run in one batch."""
    client(tracking_uri).log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def create_run(
    experiment: str, run_name: str, tags: Mapping[str, str], tracking_uri: str | None = None
) -> str:
    """Create a RUNNING run and return its id (the caller ends it with :func:`end_run`)."""
    uri = tracking_uri or paths.default_tracking_uri()
    run = client(uri).create_run(experiment_id(experiment, uri), tags=dict(tags), run_name=run_name)
    return run.info.run_id


def end_run(run_id: str, status: str = "FINISHED", tracking_uri: str | None = None) -> None:
    """End a run with ``status`` (FINISHED, FAILED or KILLED)."""
    client(tracking_uri).set_terminated(run_id, status=status)


def reopen_run(run_id: str, tracking_uri: str | None = None) -> None:
    """Mark a run RUNNING again (a resumed or retried trial continues its own run)."""
    client(tracking_uri).update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))


def find_runs(
    experiment: str, filter_string: str, tracking_uri: str | None = None
) -> list[mlflow.entities.Run]:
    """Runs of ``experiment`` matching an MLflow filter (empty list if no experiment)."""
    c = client(tracking_uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return list(c.search_runs([exp.experiment_id], filter_string=filter_string, max_results=5000))


def status_for(exc: BaseException | None) -> str:
    """MLflow run status for how a block ended."""
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED"
    return "FAILED"


@contextlib.contextmanager
def run(
    experiment: str,
    run_name: str,
    tags: Mapping[str, str] | None = None,
    *,
    tracking_uri: str | None = None,
    run_id: str | None = None,
) -> Iterator[str]:
    """A fluent MLflow run that always ends: FINISHED, KILLED (Ctrl-C) or FAILED.

    Yields the run id; inside the block ``mlflow.log_*`` and ``mlflow.pytorch.log_model``
    write to this run. Pass ``run_id`` to continue an existing run.
    """
    uri = configure(tracking_uri)
    if run_id is None:
        run_id = create_run(experiment, run_name, tags or {}, uri)
    active = mlflow.start_run(run_id=run_id)
    try:
        yield active.info.run_id
    except BaseException as exc:
        mlflow.end_run(status=status_for(exc))
        raise
    mlflow.end_run(status="FINISHED")


def log_torch_model(model: Any, name: str = "model") -> None:
    """Log a trained model as an MLflow PyTorch model in the active run (CPU, eval mode)."""
    import mlflow.pytorch
    import timm
    import torch
    import torchvision

    # Explicit requirements: MLflow's inference imports the model in a subprocess (seconds
    # per model), and it would miss capstudy, whose classes the pickled model refers to.
    requirements = [
        f"torch=={torch.__version__.split('+')[0]}",
        f"torchvision=={torchvision.__version__.split('+')[0]}",
        f"timm=={timm.__version__}",
        "capstudy",
    ]
    # "pickle": FCOS's data-dependent post-processing does not trace to MLflow 3's default
    # pt2 graph format; the pickled module loads wherever capstudy is installed. MLflow warns
    # about pickle on every call; the choice is deliberate, so that warning is silenced.
    import logging

    flavor_log = logging.getLogger("mlflow.pytorch")
    level = flavor_log.level
    flavor_log.setLevel(logging.ERROR)
    try:
        mlflow.pytorch.log_model(
            model.cpu().eval(),
            name=name,
            pip_requirements=requirements,
            serialization_format="pickle",
        )
    finally:
        flavor_log.setLevel(level)
