"""A resumed trial whose snapshot names a checkpoint Ray already deleted still finishes.

Ray deletes a trial's older checkpoint as soon as it registers a newer one, and snapshots the
experiment only every 10 s or more; a driver SIGKILLed in between leaves a snapshot naming a
deleted checkpoint (the full_grid-shape kill test hit it about one run in four). Here that
state is made on purpose: a trial crashes for good, the checkpoint its snapshot names is
removed, and ``--resume`` must still finish it with an uninterrupted run's results.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ray import tune

from capstudy import keys, tracking
from capstudy.launch.driver import LaunchOptions, build_tuner
from capstudy.launch.recorder import StudyRecorder
from capstudy.launch.scripted import crash_once_trainable
from capstudy.study import parse_study_text

STUDY = """
study: {name: repair, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 6}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-7]}
  seed: {grid_search: [0]}
evaluate: [synth_a/ir]
tune: {samples_per_cell: 1, search: random, asha: {grace: 1, reduction: 2, scope: cell}}
resources: {cpu: 1, gpu: 0}
"""


def _fit(spec, storage, uri, parent, resume: bool):
    recorder = StudyRecorder(spec.name, uri, parent, spec.metric)
    opts = LaunchOptions(space=str(spec.source), max_failures=0, resume=resume)
    tuner = build_tuner(
        spec,
        opts,
        storage / spec.name,
        recorder,
        crash_once_trainable,
        resume,
    )
    results = tuner.fit()
    recorder.reconcile(results._experiment_analysis.trials)
    assert recorder.close()
    return list(results), recorder


def test_resume_repairs_a_snapshot_naming_a_deleted_checkpoint(tmp_path, local_ray):
    from capstudy.launch import scheduler as scheduler_mod

    spec = parse_study_text(STUDY, tmp_path / "repair.yaml")
    uri = tracking.configure()
    parent = tracking.create_run(spec.name, "study", {keys.T_KIND: keys.KIND_STUDY}, uri)
    storage = tmp_path / "ray_results"
    (first,), _ = _fit(spec, storage, uri, parent, resume=False)
    assert first.error is not None and first.metrics["epoch"] == 2
    # The checkpoint Ray's snapshot names for the trial: gone, as after the race.
    named = tune.ExperimentAnalysis(str(storage / spec.name)).trials[0].checkpoint.path
    shutil.rmtree(named)
    left = sorted(p.name for p in Path(named).parent.glob("checkpoint_*"))
    assert left, "Ray kept no older checkpoint to resume from"
    newest_left = int((Path(named).parent / left[-1] / "epoch.txt").read_text())

    (result,), recorder = _fit(spec, storage, uri, parent, resume=True)
    assert result.error is None, result.error
    assert scheduler_mod._ACTIVE.repaired == 1
    # Resumed from the newest checkpoint left, not from scratch, and ran to the end.
    assert result.metrics["epoch"] == 6
    assert result.metrics["perf/restored_from"] == newest_left
    (run,) = tracking.find_runs(spec.name, f"tags.`{keys.T_PARENT_RUN}` = '{parent}'", uri)
    assert run.info.status == "FINISHED"
    history = tracking.client(uri).get_metric_history(run.info.run_id, "val/map50")
    assert sorted({m.step for m in history}) == [1, 2, 3, 4, 5, 6]
    assert recorder.continued == {run.data.tags[keys.T_TRIAL_ID]}


def test_resume_restarts_a_trial_with_no_checkpoint_left(tmp_path, local_ray):
    spec = parse_study_text(STUDY, tmp_path / "repair.yaml")
    uri = tracking.configure()
    parent = tracking.create_run(spec.name, "study", {keys.T_KIND: keys.KIND_STUDY}, uri)
    storage = tmp_path / "ray_results"
    _fit(spec, storage, uri, parent, resume=False)
    named = tune.ExperimentAnalysis(str(storage / spec.name)).trials[0].checkpoint.path
    for folder in Path(named).parent.glob("checkpoint_*"):
        shutil.rmtree(folder)
    (result,), _ = _fit(spec, storage, uri, parent, resume=True)
    # From scratch: no checkpoint to restore, so it crashes after epoch 2 again, as the first
    # launch did (not a restore error about a missing checkpoint).
    assert result.metrics["epoch"] == 2 and result.metrics["perf/restored_from"] == 0
    assert "does not exist on storage" not in str(result.error)


def test_resume_forgets_an_older_checkpoint_gone_from_storage(tmp_path, local_ray):
    """The snapshot's latest checkpoint exists but an older one it lists is gone: Ray would
    fail deleting it when the trial checkpoints next, leaving stale folders behind."""
    spec = parse_study_text(STUDY, tmp_path / "repair.yaml")
    uri = tracking.configure()
    parent = tracking.create_run(spec.name, "study", {keys.T_KIND: keys.KIND_STUDY}, uri)
    storage = tmp_path / "ray_results"
    _fit(spec, storage, uri, parent, resume=False)
    named = Path(tune.ExperimentAnalysis(str(storage / spec.name)).trials[0].checkpoint.path)
    named_epoch = int((named / "epoch.txt").read_text())
    older = sorted(p for p in named.parent.glob("checkpoint_*") if p.name < named.name)
    assert older, "Ray kept no older checkpoint"
    for folder in older:
        shutil.rmtree(folder)
    (result,), _ = _fit(spec, storage, uri, parent, resume=True)
    assert result.error is None, result.error
    assert result.metrics["epoch"] == 6 and result.metrics["perf/restored_from"] == named_epoch
    # Two checkpoints kept (num_to_keep), the newest two: nothing stale left behind.
    kept = sorted(p.name for p in named.parent.glob("checkpoint_*"))
    assert len(kept) == 2 and named.name not in kept, kept
    epochs = [int((named.parent / k / "epoch.txt").read_text()) for k in kept]
    assert epochs == [5, 6]
    # Ray numbered every checkpoint it registered: the next one (after a further restart)
    # gets a new folder instead of overwriting the latest.
    (trial,) = tune.ExperimentAnalysis(str(storage / spec.name)).trials
    assert trial.storage.current_checkpoint_index == int(kept[-1].split("_")[1])
