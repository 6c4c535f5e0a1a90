"""Helpers for analysis tests: a real SQLite MLflow store and trial runs logged with keys.py."""

from __future__ import annotations

import time

import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from capstudy import keys


def start_study(client: MlflowClient, study: str) -> tuple[str, str]:
    """Start a launch: the study's experiment (made on first use) and a new parent run.

    Returns:
        The experiment id and the parent run (kind=study) id.
    """
    exp = client.get_experiment_by_name(study)
    exp_id = exp.experiment_id if exp else client.create_experiment(study, artifact_location=None)
    parent = client.create_run(exp_id, tags={keys.T_KIND: keys.KIND_STUDY, keys.T_STUDY: study})
    return exp_id, parent.info.run_id


def log_trial(
    client: MlflowClient,
    exp_id: str,
    parent_id: str,
    *,
    study: str,
    design: dict,
    val: list[float],
    evals: dict[str, float],
    capacity: tuple[float, float, float] = (1e5, 3e5, 1e7),
    hpo: dict | None = None,
    status: str = "FINISHED",
    trial_id: str | None = None,
) -> str:
    """Log one trial run as the engine does: params, tags, per-epoch val and final eval."""
    tags = {
        keys.T_KIND: keys.KIND_TRIAL,
        keys.T_STUDY: study,
        keys.T_PARENT_RUN: parent_id,
        keys.T_TRIAL_ID: trial_id or f"t{time.monotonic_ns()}",
    }
    run = client.create_run(exp_id, tags=tags)
    rid = run.info.run_id
    params = {keys.P_STUDY_METRIC: "val/map50", keys.P_TASK: "detection", **design}
    params.update({f"{keys.P_HPO_PREFIX}{k}": v for k, v in (hpo or {}).items()})
    now = int(time.time() * 1000)
    metrics = [Metric("val/map50", v, now + i, i) for i, v in enumerate(val)]
    last = len(val) - 1
    metrics += [Metric(k, v, now + last, last) for k, v in evals.items()]
    for key, value in zip(
        (keys.M_BACKBONE_PARAMS, keys.M_DETECTOR_PARAMS, keys.M_MACS), capacity, strict=True
    ):
        metrics.append(Metric(key, value, now, 0))
    client.log_batch(
        rid,
        metrics=metrics,
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(keys.T_CELL, "|".join(str(design[k]) for k in sorted(design)))],
    )
    if status != "RUNNING":
        client.set_terminated(rid, status=status)
    return rid


def log_table_as_study(
    client: MlflowClient, table: pd.DataFrame, study: str, pair_tags: bool = False
) -> str:
    """Log every trial of a tidy table (e.g. a simulated study) as one launch; return its
    parent run id. ``pair_tags`` also records the comparison-key tags the launcher writes.
    """
    exp_id, parent = start_study(client, study)
    metric = [c for c in table.columns if c == "map50"][0]
    for trial_id, rows in table.groupby("trial_id", sort=False):
        first = rows.iloc[0]
        design = {
            keys.P_FAMILY: first["family"],
            keys.P_PHI: int(first["phi"]),
            keys.P_LABEL: first["label"],
            keys.P_INIT: first["init"],
            keys.P_TRAIN_DOMAIN: first["train_domain"],
            keys.P_SEED: int(first["seed"]),
        }
        evals = {keys.eval_metric(r["eval_domain"], metric): r[metric] for _, r in rows.iterrows()}
        rid = log_trial(
            client,
            exp_id,
            parent,
            study=study,
            design=design,
            val=[first["selection_value"] / 2, first["selection_value"]],
            evals=evals,
            capacity=(first["backbone_params"], first["detector_params"], first["macs"]),
            trial_id=str(trial_id),
        )
        if pair_tags:
            cell = f"{first['family']}|phi={first['phi']}|init={first['init']}|seed={first['seed']}"
            pair_key, variant_key = keys.comparison_keys(cell)
            client.set_tag(rid, keys.T_PAIR_KEY, pair_key)
            client.set_tag(rid, keys.T_VARIANT_KEY, variant_key)
    client.set_terminated(parent, status="FINISHED")
    return parent
