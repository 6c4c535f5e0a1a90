"""The real searcher, per-cell ASHA scheduler and MLflow recorder, driven through a real
local Ray (``ray.init``) by a scripted trainable: no model is trained, every decision is Ray's.
"""

from __future__ import annotations

from ray import tune

from capstudy import keys, tracking
from capstudy.launch.driver import LaunchOptions, build_tuner
from capstudy.launch.recorder import StudyRecorder, trial_run_filter
from capstudy.launch.scripted import crash_once_trainable
from capstudy.launch.searcher import CELL_ID_KEY, TRIAL_KEY
from capstudy.study import parse_study_text

STUDY = """
study: {name: wiring, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 4}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-7, 0]}
  seed: {grid_search: [0]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
evaluate: [synth_a/ir]
tune: {samples_per_cell: 4, search: random, asha: {grace: 1, reduction: 2, scope: SCOPE}}
resources: {cpu: 1, gpu: 0}
"""


def scripted_trainable(config: dict) -> None:
    """B0 cells score ~0.8, B-7 cells ~0.1; inside a cell, later samples score lower.

    Samples of a cell start in order (k = 0, 1, ...), so every later sample arrives at a rung
    below what is recorded there and per-cell ASHA has something to stop in every cell.
    """
    base = 0.1 if config["phi"] == -7 else 0.8
    k = int(config[TRIAL_KEY].rsplit("-s", 1)[1])
    for epoch in range(1, config["epochs"] + 1):
        value = base + 0.05 * (3 - k) + 0.001 * epoch
        tune.report({"epoch": epoch, "val/map50": value, "eval/synth_a/ir/map50": value / 2})


def _run(scope: str, tmp_path, local_ray, max_concurrent: int = 2, study: str = STUDY):
    spec = parse_study_text(study.replace("SCOPE", scope), tmp_path / "wiring.yaml")
    uri = tracking.configure()
    parent = tracking.create_run(spec.name, "study", {keys.T_KIND: keys.KIND_STUDY}, uri)
    recorder = StudyRecorder(spec.name, uri, parent, spec.metric, spec.mode)
    storage = tmp_path / "ray_results"
    opts = LaunchOptions(space=str(spec.source), max_concurrent=max_concurrent, max_failures=0)
    tuner = build_tuner(
        spec,
        opts,
        storage / spec.name,
        recorder,
        scripted_trainable,
        False,
    )
    results = tuner.fit()
    assert recorder.close()  # the tracking sink writes after the callbacks return: flush it
    epochs = {}
    for result in results:
        cfg = result.config
        epochs[cfg[TRIAL_KEY]] = (cfg[CELL_ID_KEY], result.metrics["epoch"])
    return spec, uri, parent, epochs


def test_per_cell_asha_keeps_the_best_of_every_cell(tmp_path, local_ray):
    spec, uri, parent, epochs = _run("cell", tmp_path, local_ray)
    assert len(epochs) == 8
    by_cell: dict[str, list[int]] = {}
    for cell, epoch in epochs.values():
        by_cell.setdefault(cell, []).append(epoch)
    assert len(by_cell) == 2
    for cell, reached in by_cell.items():
        assert max(reached) == 4, (cell, reached)  # the best trial of each cell runs to the end
        assert min(reached) < 4, (cell, reached)  # and ASHA did stop someone in each cell
    # Every trial is one FINISHED child run with per-epoch metrics and the study metric.
    for key in epochs:
        (run,) = tracking.find_runs(spec.name, trial_run_filter(key, parent), uri)
        assert run.info.status == "FINISHED"
        assert run.data.params[keys.P_STUDY_METRIC] == "val/map50"
        assert run.data.params[keys.P_STUDY_MODE] == spec.mode == "max"  # for the analysis
        assert run.data.tags[keys.T_CELL] == epochs[key][0]
        pair_key, variant_key = keys.comparison_keys(epochs[key][0])
        assert run.data.tags[keys.T_PAIR_KEY] == pair_key  # what the analysis pairs on
        assert run.data.tags[keys.T_VARIANT_KEY] == variant_key
        assert "init=" not in pair_key
        assert run.data.params[f"{keys.P_HPO_PREFIX}lr"]
        history = tracking.client(uri).get_metric_history(run.info.run_id, "val/map50")
        assert [m.step for m in history] == list(range(1, epochs[key][1] + 1))


def test_global_asha_stops_the_small_cell_for_being_small(tmp_path, local_ray):
    # One trial at a time, B0 cells first: every B-7 trial meets B0 values at its first rung.
    study = STUDY.replace("[-7, 0]", "[0, -7]")
    _, _, _, epochs = _run("global", tmp_path, local_ray, max_concurrent=1, study=study)
    small = [e for cell, e in epochs.values() if "phi=-7" in cell]
    big = [e for cell, e in epochs.values() if "phi=0" in cell]
    assert max(big) == 4
    # Every B-7 trial scores below every B0 trial, so a global cutoff stops each of them at
    # the first rung, the best B-7 included: the bias that per-cell scope exists to avoid.
    assert small == [1, 1, 1, 1], small


def test_failed_trial_retries_from_its_checkpoint_in_the_same_run(tmp_path, local_ray):
    study = STUDY.replace("SCOPE", "cell").replace("[-7, 0]", "[-7]")
    study = study.replace("samples_per_cell: 4", "samples_per_cell: 1")
    spec = parse_study_text(study, tmp_path / "crash.yaml")
    uri = tracking.configure()
    parent = tracking.create_run(spec.name, "study", {keys.T_KIND: keys.KIND_STUDY}, uri)
    recorder = StudyRecorder(spec.name, uri, parent, spec.metric)
    storage = tmp_path / "ray_results"
    opts = LaunchOptions(space=str(spec.source), max_failures=1)
    tuner = build_tuner(
        spec,
        opts,
        storage / spec.name,
        recorder,
        crash_once_trainable,
        False,
    )
    (result,) = list(tuner.fit())
    assert recorder.close()
    assert result.error is None
    assert result.metrics["epoch"] == 4 and result.metrics["perf/restored_from"] == 2
    (run,) = tracking.find_runs(spec.name, f"tags.`{keys.T_PARENT_RUN}` = '{parent}'", uri)
    assert run.info.status == "FINISHED"  # one run, continued by the retry: no duplicate
    history = tracking.client(uri).get_metric_history(run.info.run_id, "val/map50")
    assert sorted({m.step for m in history}) == [1, 2, 3, 4]
