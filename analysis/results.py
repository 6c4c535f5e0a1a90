"""Trial runs from MLflow into the tidy table (one row per trial x evaluation domain).

Runs are read by :mod:`capstudy.analysis.mlflow_io`; this module only maps the keys of
:mod:`capstudy.keys` onto the table's columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from capstudy import keys
from capstudy.analysis import mlflow_io, tables
from capstudy.errors import CapstudyError

_CAPACITY_METRICS = {
    "backbone_params": keys.M_BACKBONE_PARAMS,
    "detector_params": keys.M_DETECTOR_PARAMS,
    "macs": keys.M_MACS,
}
_PARAM_COLUMNS = {
    "task": keys.P_TASK,
    "family": keys.P_FAMILY,
    "phi": keys.P_PHI,
    "label": keys.P_LABEL,
    "init": keys.P_INIT,
    "train_domain": keys.P_TRAIN_DOMAIN,
    "seed": keys.P_SEED,
    "selection_metric": keys.P_STUDY_METRIC,
    "selection_mode": keys.P_STUDY_MODE,
}


@dataclass
class LoadedResults:
    """A tidy table plus what was left out of it and why."""

    study: str
    table: pd.DataFrame
    skipped: Counter = field(default_factory=Counter)
    experiment_id: str = ""
    parent_run_id: str = ""
    n_launches: int = 0


def load_from_mlflow(
    tracking_uri: str, study: str | None = None, parent: str | None = "latest"
) -> LoadedResults:
    """Read one launch of a study (its finished trial runs) into the tidy table.

    Args:
        tracking_uri: MLflow tracking URI (SQLite file, folder or http server).
        study: study (= experiment) name; the most recently started study when None.
        parent: ``latest`` (the newest launch), a parent run id, or ``all`` (every launch;
            an error if a trial appears in two of them).

    Raises:
        CapstudyError: no such study or launch, or no usable finished trial in it.
    """
    name = study or mlflow_io.latest_study(tracking_uri)
    runs = mlflow_io.read_study_runs(tracking_uri, name, parent)
    skipped = Counter(runs.skipped)
    rows: list[dict] = []
    for record in runs.runs:
        new_rows, reason = rows_of_run(record, name)
        if reason:
            skipped[reason] += 1
        rows.extend(new_rows)
    if not rows:
        detail = ", ".join(f"{n} {why}" for why, n in skipped.items()) or "no trial runs"
        raise CapstudyError(f"study {name!r} in {tracking_uri} has no usable trials ({detail})")
    table = tables.normalize(pd.DataFrame(rows), source=f"MLflow study {name!r}", study=name)
    return LoadedResults(
        study=name,
        table=table,
        skipped=skipped,
        experiment_id=runs.experiment_id,
        parent_run_id=runs.parent_run_id,
        n_launches=runs.n_launches,
    )


def rows_of_run(record: mlflow_io.RunRecord, study: str) -> tuple[list[dict], str]:
    """The tidy rows of one finished trial run, or no rows and the reason it is skipped."""
    params, metrics = record.params, record.metrics
    missing = [p for p in (keys.P_FAMILY, keys.P_PHI, keys.P_INIT, keys.P_SEED) if p not in params]
    if missing:
        return [], f"missing param {missing[0]}"
    selection_key = params.get(keys.P_STUDY_METRIC, "")
    if selection_key not in metrics:
        return [], "no final selection metric"
    by_domain: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        split = keys.split_eval_metric(key)
        if split:
            by_domain.setdefault(split[0], {})[split[1]] = value
    if not by_domain:
        return [], "no evaluation metric"
    base = {col: params.get(key, "") for col, key in _PARAM_COLUMNS.items()}
    base.update(
        study=record.tags.get(keys.T_STUDY, study),
        run_id=record.run_id,
        trial_id=record.tags.get(keys.T_TRIAL_ID, record.run_id),
        selection_value=metrics[selection_key],
    )
    base["cell"] = record.tags.get(keys.T_CELL) or tables.cell_id(
        base["family"], base["phi"], base["init"], base["train_domain"], base["seed"]
    )
    base.update(_design_of(record))
    for col, key in _CAPACITY_METRICS.items():
        base[col] = metrics.get(key, np.nan)
    for key, value in params.items():
        if key.startswith(keys.P_HPO_PREFIX):
            base[keys.HPO_COLUMN_PREFIX + key[len(keys.P_HPO_PREFIX) :]] = _number(value)
    rows = []
    for domain, values in sorted(by_domain.items()):
        classes = class_set_of(record.tags, domain)
        rows.append({**base, "eval_domain": domain, "class_set": classes, **values})
    return rows, ""


def _design_of(record: mlflow_io.RunRecord) -> dict:
    """Optional grid columns, the comparison keys and the launch of one trial run.

    Keys come from the trial's tags; a run recorded before they existed has none, and
    :func:`tables.normalize` then derives them from the grid columns for every row.
    """
    out = {
        col: _number(record.params[key])
        for col, key in keys.DESIGN_PARAM_COLUMNS.items()
        if key in record.params
    }
    out["pair_key"] = record.tags.get(keys.T_PAIR_KEY, "")
    out["variant_key"] = record.tags.get(keys.T_VARIANT_KEY, "")
    out["parent_run_id"] = record.tags.get(keys.T_PARENT_RUN, "")
    return out


def class_set_of(tags: dict[str, str], domain: str) -> str:
    """The class set an evaluation domain's metrics were scored on ("" if not recorded)."""
    prefix = keys.T_CLASS_SET_PREFIX
    for key in (f"{prefix}.{domain}", f"{prefix}/{domain}", prefix):
        if tags.get(key):
            return tags[key]
    return ""


def _number(value: str) -> float | str:
    """HPO params arrive as strings; keep numbers numeric so they can be plotted/compared."""
    try:
        return float(value)
    except ValueError:
        return value
