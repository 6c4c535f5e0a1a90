"""``--resume`` of a study that already finished runs nothing: no Ray experiment, no latency
pass, the parent run untouched; it says so and reports the recorded counts."""

from __future__ import annotations

import io

from rich.console import Console

from capstudy import tracking
from capstudy.launch.driver import LaunchOptions, launch
from capstudy.launch.scripted import scripted_trainable

STUDY = """
study: {name: done_once, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 2}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-7]}
  init: {grid_search: [random]}
  seed: {grid_search: [0]}
  lr: {loguniform: [1.0e-3, 1.0e-2]}
evaluate: [synth_a/ir]
tune: {samples_per_cell: 2, search: random, asha: {grace: 1, reduction: 2, scope: cell}}
resources: {cpu: 1, gpu: 0}
"""


def _launch(path, storage, resume: bool):
    out = io.StringIO()
    opts = LaunchOptions(space=str(path), storage=str(storage), resume=resume)
    outcome = launch(opts, Console(file=out, width=200), trainable_fn=scripted_trainable)
    return outcome, out.getvalue()


def test_resuming_a_finished_study_runs_nothing(tmp_path, local_ray, capstudy_home):
    path = tmp_path / "done_once.yaml"
    path.write_text(STUDY)
    storage = tmp_path / "ray_results"
    first, printed = _launch(path, storage, resume=False)
    assert (first.status, first.trials_done, first.trials_total) == ("FINISHED", 2, 2)
    assert "CPU latency" in printed
    snapshots = sorted(p.name for p in (storage / "done_once").glob("experiment_state-*"))
    run = tracking.client(tracking.configure()).get_run(first.parent_run_id)

    again, printed = _launch(path, storage, resume=True)
    assert "already finished" in printed and first.parent_run_id in printed
    assert (again.status, again.parent_run_id) == ("FINISHED", first.parent_run_id)
    assert (again.trials_done, again.trials_failed, again.trials_total) == (2, 0, 2)
    assert "CPU latency" not in printed  # no second latency pass
    assert sorted(p.name for p in (storage / "done_once").glob("experiment_state-*")) == snapshots
    after = tracking.client(tracking.configure()).get_run(first.parent_run_id)
    assert after.info.end_time == run.info.end_time  # the parent run was not reopened
