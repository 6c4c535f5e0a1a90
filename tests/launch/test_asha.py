"""Per-cell ASHA, driven with scripted streams of results (no Ray runtime)."""

import json
import random

import numpy as np

from capstudy.launch.asha import CONTINUE, STOP, CellASHA, _percentile


def test_percentile_matches_numpy():
    rng = random.Random(0)
    for _ in range(50):
        values = [rng.random() for _ in range(rng.randint(1, 9))]
        for q in (50.0, 66.7, (1 - 1 / 3) * 100, 75.0):
            # Exactly, not approximately: a value tied at the cutoff decides by the last bit.
            assert _percentile(values, q) == np.nanpercentile(values, q)
    assert _percentile([0.1, 0.5], 50.0) == 0.3  # the textbook lerp gives 0.30000000000000004
    assert _percentile([float("nan"), 0.2], 50.0) == 0.2 and _percentile([float("nan")], 50) is None


def test_weak_trial_in_same_cell_is_stopped():
    asha = CellASHA(grace=1, reduction=2, max_t=8)
    assert asha.on_result("a", "cell1", 1, 0.9) == CONTINUE
    assert asha.on_result("b", "cell1", 1, 0.1) == STOP
    assert asha.stopped == {"b": ("cell1", 1)}


def test_other_cells_never_stop_a_trial():
    """A strong big/pretrained cell must not stop a weak small/scratch cell's trials."""
    asha = CellASHA(grace=1, reduction=3, max_t=9)
    # Cell "big": strong values at every rung.
    for i in range(6):
        for epoch in (1, 3):
            asha.on_result(f"big{i}", "big", epoch, 0.8 + 0.01 * i)
    # Cell "small": much weaker, but its first trial is the best of its own cell.
    assert asha.on_result("small0", "small", 1, 0.05) == CONTINUE
    assert asha.on_result("small0", "small", 3, 0.06) == CONTINUE
    assert "small0" not in asha.stopped
    # The same stream under a global scope stops it: that is the bias per-cell avoids.
    glob = CellASHA(grace=1, reduction=3, max_t=9, scope="global")
    for i in range(6):
        glob.on_result(f"big{i}", "big", 1, 0.8 + 0.01 * i)
    assert glob.on_result("small0", "small", 1, 0.05) == STOP


def test_scripted_stream_matches_independent_runs():
    """Interleaving cells gives exactly the decisions each cell would get alone."""
    rng = random.Random(1)
    stream = []
    for cell in ("c0", "c1", "c2"):
        for t in range(5):
            for epoch in range(1, 9):
                stream.append(
                    (f"{cell}-t{t}", cell, epoch, rng.random() + (0.5 if cell == "c0" else 0))
                )
    ordered = sorted(stream, key=lambda r: (r[2], r[0]))
    mixed = CellASHA(grace=1, reduction=2, max_t=8)
    alone = {c: CellASHA(grace=1, reduction=2, max_t=8) for c in ("c0", "c1", "c2")}
    stopped_mixed: set[str] = set()
    stopped_alone: set[str] = set()
    for trial, cell, epoch, value in ordered:
        if trial not in stopped_mixed and mixed.on_result(trial, cell, epoch, value) == STOP:
            stopped_mixed.add(trial) if epoch < 8 else None
        if trial not in stopped_alone and alone[cell].on_result(trial, cell, epoch, value) == STOP:
            stopped_alone.add(trial) if epoch < 8 else None
    assert stopped_mixed == stopped_alone
    assert stopped_mixed  # the stream does stop some trials


def test_min_mode_and_nan():
    asha = CellASHA(grace=1, reduction=2, max_t=4, mode="min")
    assert asha.on_result("a", "c", 1, 0.1) == CONTINUE
    assert asha.on_result("b", "c", 1, 0.9) == STOP  # higher loss is worse
    assert asha.on_result("c", "c", 1, float("nan")) == CONTINUE


def test_max_t_ends_trial_without_counting_as_early_stop():
    asha = CellASHA(grace=1, reduction=2, max_t=2)
    asha.on_result("a", "c", 1, 0.5)
    assert asha.on_result("a", "c", 2, 0.5) == STOP
    assert asha.stopped == {}


class _Trial:
    def __init__(self, trial_id: str, cell: str):
        self.trial_id = trial_id
        self.config = {"_cell": cell}


def test_ray_scheduler_adapter_scopes_by_the_trials_cell():
    from ray.tune.schedulers import TrialScheduler

    from capstudy.launch.scheduler import CellASHAScheduler

    sched = CellASHAScheduler(CellASHA(grace=1, reduction=2, max_t=4), "val/map50", "max")
    strong, weak_other, weak_same = _Trial("s", "A"), _Trial("w", "B"), _Trial("x", "A")
    assert (
        sched.on_trial_result(None, strong, {"epoch": 1, "val/map50": 0.9})
        == TrialScheduler.CONTINUE
    )
    assert (
        sched.on_trial_result(None, weak_other, {"epoch": 1, "val/map50": 0.1})
        == TrialScheduler.CONTINUE
    )
    assert (
        sched.on_trial_result(None, weak_same, {"epoch": 1, "val/map50": 0.1})
        == TrialScheduler.STOP
    )
    # Results without the metric (e.g. Ray's own bookkeeping) never stop anything.
    assert sched.on_trial_result(None, weak_same, {"epoch": 2}) == TrialScheduler.CONTINUE


def test_saved_rungs_restore_the_same_decisions():
    # A resumed study must decide as the uninterrupted one: rungs restored, not restarted.

    asha = CellASHA(grace=1, reduction=2, max_t=8)
    assert asha.on_result("a", "c", 1, 0.9) == "CONTINUE"
    assert asha.on_result("b", "c", 1, 0.1) == "STOP"
    restored = CellASHA.from_state(json.loads(json.dumps(asha.to_state())))
    assert restored.to_state() == asha.to_state() and restored.same_settings(asha)
    # A third trial meets the restored rung (a fresh one would let it continue).
    assert restored.on_result("c", "c", 1, 0.2) == "STOP"
    assert CellASHA(grace=1, reduction=2, max_t=8).on_result("c", "c", 1, 0.2) == "CONTINUE"


def test_a_stop_decision_stands_when_the_trial_reports_its_rung_again():
    # The driver died after ASHA stopped "b" but before Ray saved that: "b" resumes from an
    # earlier checkpoint and reaches the rung again.

    asha = CellASHA(grace=1, reduction=2, max_t=8)
    asha.on_result("a", "c", 1, 0.9)
    assert asha.on_result("b", "c", 1, 0.1) == "STOP"
    assert asha.on_result("b", "c", 1, 0.1) == "STOP"


def test_global_scope_survives_a_save_and_restore():
    # A resumed global-scope study must stay global: restored as per-cell, a weak trial of
    # another cell would no longer meet the strong trials' rung.
    asha = CellASHA(grace=1, reduction=2, max_t=8, scope="global")
    asha.on_result("strong", "big", 1, 0.9)
    restored = CellASHA.from_state(json.loads(json.dumps(asha.to_state())))
    assert restored.scope == "global" and restored.same_settings(asha)
    assert not restored.same_settings(CellASHA(grace=1, reduction=2, max_t=8))
    assert restored.on_result("weak", "small", 1, 0.1) == STOP


def test_a_forgotten_trial_no_longer_raises_the_cutoff():
    asha = CellASHA(grace=1, reduction=2, max_t=8)
    assert asha.on_result("removed", "c", 1, 0.9) == CONTINUE
    asha.forget("removed")
    assert asha.to_state()["cells"] == {"c": {"1": {}}}
    # Against the removed trial's 0.9 it would stop; with its record gone it is first.
    assert asha.on_result("next", "c", 1, 0.1) == CONTINUE
    asha.forget("never-seen")  # forgetting an unknown trial is harmless
    assert asha.to_state()["cells"] == {"c": {"1": {"next": 0.1}}}
