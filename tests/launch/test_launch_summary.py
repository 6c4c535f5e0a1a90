"""The launch's own records through a real local Ray: device time, weights lineage, the error
line of a failed trial, the results table, and ``--retry-failed`` into the same parent run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ray import tune

from capstudy import keys, tracking
from capstudy.launch.driver import LaunchOptions, build_tuner
from capstudy.launch.recorder import StudyRecorder
from capstudy.launch.searcher import TRIAL_KEY
from capstudy.launch.summary import results_table
from capstudy.launch.trialfacts import INIT_MODEL, INIT_RUN_ID, INIT_VERSION
from capstudy.study import parse_study_text

STUDY = """
study: {name: summary, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 2}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-7, 0]}
  seed: {grid_search: [0]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
evaluate: [synth_a/ir]
tune: {samples_per_cell: 2, search: random, asha: {grace: 2, reduction: 2, scope: cell}}
resources: {cpu: 1, gpu: 0}
"""


# Shipped by value to the workers with this module, so they see the driver's path.
MARKER = Path(tempfile.gettempdir()) / f"capstudy-summary-broken-{os.getpid()}"


def scripted(config: dict) -> None:
    """B-7 trials fail while ``MARKER`` exists; every trial reports a lineage."""
    if config["phi"] == -7 and MARKER.exists():
        raise FloatingPointError("training diverged in epoch 1 (scripted)")
    base = 0.1 if config["phi"] == -7 else 0.8
    k = int(config[TRIAL_KEY].rsplit("-s", 1)[1])
    for epoch in (1, 2):
        value = base + 0.01 * k + 0.001 * epoch
        lineage = {INIT_MODEL: "capstudy-x-imagenet", INIT_VERSION: "3", INIT_RUN_ID: "abc"}
        capacity = 17400.0 if base < 0.5 else 3.6e6
        metrics = {"epoch": epoch, "val/map50": value, "eval/synth_a/ir/map50": value / 2}
        tune.report({**metrics, "capacity/backbone_params": capacity, **lineage})


def test_records_results_table_and_retry_failed(tmp_path, local_ray):
    MARKER.write_text("the cause")
    spec = parse_study_text(STUDY, tmp_path / "summary.yaml")
    uri = tracking.configure()
    parent = tracking.create_run(spec.name, "study", {keys.T_KIND: keys.KIND_STUDY}, uri)
    tracking.log_params(
        parent, {keys.P_STUDY_METRIC: "val/map50", keys.P_EVAL_DOMAINS: "synth_a/ir"}, uri
    )
    storage = tmp_path / "ray_results"
    opts = LaunchOptions(space=str(spec.source), max_failures=0)
    recorder = StudyRecorder(spec.name, uri, parent, spec.metric)
    build_tuner(spec, opts, storage / spec.name, recorder, scripted, False).fit()
    recorder.close()

    runs = tracking.find_runs(spec.name, f"tags.`{keys.T_KIND}` = 'trial'", uri)
    by_status = {}
    for run in runs:
        by_status.setdefault(run.info.status, []).append(run)
    assert len(by_status["FAILED"]) == 2 and len(by_status["FINISHED"]) == 2
    for run in by_status["FAILED"]:
        assert "FloatingPointError: training diverged" in run.data.tags[keys.T_ERROR]
    for run in by_status["FINISHED"]:
        assert run.data.metrics[keys.M_DEVICE_SECONDS] > 0  # time x 1 CPU
        assert run.data.tags[keys.T_INIT_MODEL] == "capstudy-x-imagenet"
        assert run.data.tags[keys.T_INIT_VERSION] == "3"
        assert run.data.tags[keys.T_INIT_RUN_ID] == "abc"

    table = results_table(uri, spec.name, "max", 12.0)
    assert "B0" in table and "synth_a/ir map50" in table
    assert "failed: 2 x FloatingPointError" in table
    assert f"capstudy launch --retry-failed {spec.name}" in table

    # The cause is fixed: only the two FAILED trials run again, into their own runs.
    MARKER.unlink()
    finished_ids = {r.info.run_id for r in by_status["FINISHED"]}
    history = {
        rid: len(tracking.client(uri).get_metric_history(rid, "val/map50")) for rid in finished_ids
    }
    retry = LaunchOptions(space=str(spec.source), max_failures=0, retry_failed=True)
    recorder = StudyRecorder(spec.name, uri, parent, spec.metric)
    build_tuner(spec, retry, storage / spec.name, recorder, scripted, True).fit()
    recorder.close()
    after = tracking.find_runs(spec.name, f"tags.`{keys.T_KIND}` = 'trial'", uri)
    assert len(after) == 4  # no new runs: the failed ones continued
    assert {r.info.status for r in after} == {"FINISHED"}
    for rid, n in history.items():  # finished trials were not rerun
        assert len(tracking.client(uri).get_metric_history(rid, "val/map50")) == n
