"""What Ray unpickles on ``Tuner.restore`` is the driver's current recorder and scheduler."""

from __future__ import annotations

import pytest
import ray.cloudpickle as pickle

from capstudy.errors import CapstudyError
from capstudy.launch import recorder as recorder_mod
from capstudy.launch import scheduler as scheduler_mod
from capstudy.launch.asha import CellASHA
from capstudy.launch.recorder import StudyRecorder
from capstudy.launch.scheduler import CellASHAScheduler, asha_state_path, load_asha


def test_a_pickled_recorder_restores_as_the_attached_one(monkeypatch):
    monkeypatch.setattr(recorder_mod, "_ACTIVE", None)
    first = StudyRecorder("s", "sqlite:///first.db", "parent", "val/map50").attach()
    saved = pickle.dumps([first])  # as Ray pickles the run config's callbacks
    resumed = StudyRecorder("s", "http://new-head:5000", "parent", "val/map50").attach()
    (restored,) = pickle.loads(saved)
    assert restored is resumed and restored.uri == "http://new-head:5000"  # new URI honoured
    monkeypatch.setattr(recorder_mod, "_ACTIVE", None)
    with pytest.raises(CapstudyError, match="capstudy launch --resume"):
        pickle.loads(saved)


def test_a_pickled_scheduler_restores_with_the_saved_rungs(tmp_path, monkeypatch):
    monkeypatch.setattr(scheduler_mod, "_ACTIVE", None)
    exp = tmp_path / "study"
    first = CellASHAScheduler(CellASHA(1, 2, 8), "val/map50", "max", exp).attach()
    first.asha.on_result("a", "cell", 1, 0.9)
    first.save()
    saved = pickle.dumps(first)
    assert asha_state_path(exp).is_file() and not exp.exists()  # beside Ray's folder
    loaded = load_asha(exp, CellASHA(1, 2, 8))
    resumed = CellASHAScheduler(loaded, "val/map50", "max", exp).attach()
    restored = pickle.loads(saved)
    assert restored is resumed
    assert restored.asha.on_result("b", "cell", 1, 0.1) == "STOP"  # rung restored, not reset
    with pytest.raises(CapstudyError, match="tune.asha back"):
        load_asha(exp, CellASHA(2, 2, 8))
