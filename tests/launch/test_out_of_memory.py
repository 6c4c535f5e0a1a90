"""A trial that runs out of memory for real (an allocation past its own cap fails) is FAILED
with that cause, its neighbours finish, the results table and ``capstudy status`` name it, and
``--retry-failed --retry-batch-size`` reruns it with a smaller batch into the same run."""

from __future__ import annotations

import os
import resource
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from clitools import run_cli
from ray import tune

from capstudy import keys, tracking
from capstudy.launch.driver import LaunchOptions, build_tuner
from capstudy.launch.recorder import StudyRecorder
from capstudy.launch.summary import results_table
from capstudy.study import parse_study_text

pytestmark = pytest.mark.slow

STUDY = """
study: {name: oom, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 2, batch_size: 8}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-7, 0]}
  seed: {grid_search: [0]}
evaluate: [synth_a/ir]
tune: {samples_per_cell: 1, search: random, asha: {grace: 2, reduction: 2, scope: cell}}
resources: {cpu: 1, gpu: 0}
"""
CAP = 96 << 20  # the memory each trial may add to its process (a kernel limit, RLIMIT_AS)


@contextmanager
def memory_cap(extra_bytes: int):
    """Let this process map at most ``extra_bytes`` more than it has now (for the block)."""
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (pages * os.sysconf("SC_PAGE_SIZE") + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def hungry(config: dict) -> None:
    """Holds activations of batch_size x (16 MB at phi 0, 1 MB at phi -7) under its cap:
    B0 at batch 8 needs 128 MB and runs out, at batch 4 it fits; B-7 always fits."""
    batch = int(config["batch_size"])
    per_image = (16 if config["phi"] == 0 else 1) << 20
    for epoch in (1, 2):
        with memory_cap(CAP):
            activations = torch.ones(batch * per_image, dtype=torch.uint8)  # allocated for real
        del activations
        tune.report({"epoch": epoch, "val/map50": 0.1 * epoch, "perf/batch_size": batch})


def _fit(spec, storage, uri, parent, **opts) -> None:
    recorder = StudyRecorder(spec.name, uri, parent, spec.metric)
    options = LaunchOptions(space=str(spec.source), max_failures=0, **opts)
    build_tuner(spec, options, storage / spec.name, recorder, hungry, options.retry_failed).fit()
    assert recorder.close()


def _runs(spec, uri) -> dict[str, object]:
    runs = tracking.find_runs(spec.name, f"tags.`{keys.T_KIND}` = 'trial'", uri)
    return {run.data.params[keys.P_PHI]: run for run in runs}


def test_out_of_memory_is_named_and_retried_with_a_smaller_batch(tmp_path, local_ray, capsys):
    spec = parse_study_text(STUDY, tmp_path / "oom.yaml")
    uri = tracking.configure()
    tags = {keys.T_KIND: keys.KIND_STUDY, keys.T_STUDY: spec.name}
    parent = tracking.create_run(spec.name, "study", tags, uri)
    tracking.log_params(
        parent, {"study_file": str(spec.source), keys.P_STUDY_METRIC: spec.metric}, uri
    )
    storage = tmp_path / "ray_results"
    _fit(spec, storage, uri, parent)
    tracking.end_run(parent, "FINISHED", uri)  # as the driver ends its launch

    runs = _runs(spec, uri)
    assert runs["-7"].info.status == "FINISHED"  # its neighbour kept running
    assert runs["0"].info.status == "FAILED"
    cause = runs["0"].data.tags[keys.T_ERROR]
    assert cause.startswith("out of memory: ") and "can't allocate memory" in cause, cause

    table = results_table(uri, spec.name, "max", 10.0)
    assert "failed: 1 x out of memory: " in table
    assert f"capstudy launch --retry-failed {spec.name} --retry-batch-size N" in table
    assert run_cli(["status", spec.name]) == 0
    shown = capsys.readouterr().out
    assert "1 x out of memory: " in shown and "--retry-batch-size N" in shown, shown

    _fit(spec, storage, uri, parent, retry_failed=True, retry_batch_size=4)
    after = _runs(spec, uri)
    assert len(after) == 2  # the failed trial continued its own run
    retried = after["0"]
    assert retried.info.run_id == runs["0"].info.run_id
    assert retried.info.status == "FINISHED"
    assert retried.data.metrics["perf/batch_size"] == 4.0
    assert retried.data.tags[keys.T_RETRY_BATCH_SIZE] == "4"
    assert retried.data.params["batch_size"] == "8"  # the study's value; the tag says 4
