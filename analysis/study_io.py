"""What the analysis reads from MLflow besides the finished trials: cost and CPU latency.

Cost counts every trial run of the study (all launches; failed, stopped and killed runs too:
they used the devices). Latency is what the launch measured per variant on its machine and
logged on its parent run.
"""

from __future__ import annotations

import json

import pandas as pd

from capstudy import keys
from capstudy.analysis.headline import Extras


def read_extras(tracking_uri: str, study: str) -> Extras:
    """Costs of every trial run and the latest launch's per-variant CPU latencies."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(study)
    if exp is None:
        return Extras()
    rows, token = [], None
    while True:
        page = client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`{keys.T_KIND}` = '{keys.KIND_TRIAL}'",
            max_results=5000,
            page_token=token,
        )
        for run in page:
            seconds = run.data.metrics.get(keys.M_DEVICE_SECONDS)
            if seconds is not None:
                rows.append(
                    {
                        "run_id": run.info.run_id,
                        "init": run.data.params.get(keys.P_INIT, "?"),
                        "status": run.info.status,
                        "device_seconds": float(seconds),
                    }
                )
        token = page.token
        if not token:
            break
    parents = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{keys.T_KIND}` = '{keys.KIND_STUDY}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    latency = {}
    if parents:
        prefix = keys.M_CPU_LATENCY_PREFIX
        for key, value in parents[0].data.metrics.items():
            if key.startswith(prefix):
                latency[key[len(prefix) :]] = float(value)
    design = sequential_design(parents[0].data.tags) if parents else None
    return Extras(costs=pd.DataFrame(rows) if rows else None, latency=latency, sequential=design)


def sequential_design(tags: dict[str, str]) -> dict | None:
    """A sequential launch's boundaries and look decisions from its parent run's tags."""
    raw = tags.get(keys.T_SEQ_BOUNDARIES)
    if not raw:
        return None
    bounds = json.loads(raw)
    looks = [
        json.loads(tags[f"{keys.T_SEQ_LOOK_PREFIX}{k}"])
        for k in range(1, len(bounds["looks"]) + 1)
        if f"{keys.T_SEQ_LOOK_PREFIX}{k}" in tags
    ]
    return {"boundaries": bounds, "looks": looks}


def set_report_note(tracking_uri: str, run_id: str, report_md) -> None:
    """Put the report's headline in the run's description, so the MLflow UI opens with it.

    The full report (``report.html``, figures embedded) is among the run's artifacts.
    """
    from mlflow.tracking import MlflowClient

    text = report_md.read_text(encoding="utf-8")
    head = text.split("\n## ", 2)
    lead = "\n## ".join(head[:2]) if len(head) > 1 else text
    note = lead[:4500] + "\n\nFull report: artifact `report.html` (figures embedded)."
    MlflowClient(tracking_uri=tracking_uri).set_tag(run_id, "mlflow.note.content", note)
