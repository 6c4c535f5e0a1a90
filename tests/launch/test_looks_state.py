"""A sequential study's decided looks are never decided again (real SQLite MLflow store)."""

from __future__ import annotations

import json

import numpy as np
from scipy import stats

from capstudy import keys, tracking
from capstudy.analysis import sequential
from capstudy.launch.looks import looks_summary, recorded_looks, run_looks
from capstudy.storage import place
from capstudy.study import parse_study_text

STUDY = """
study: {name: looks, task: detection, metric: val/map50}
fixed: {epochs: 2}
space:
  phi: {grid_search: [0, -1, -2, -3]}
  init: {grid_search: [random, imagenet]}
  seed: {grid_search: [0, 1, 2, 3]}
sequential: {looks: [2, 4], simulations: 20}
"""


def _not_called(*_):
    raise AssertionError("a decided look was launched again")


def test_a_look_recorded_on_the_parent_run_is_not_run_or_decided_again(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = parse_study_text(STUDY, tmp_path / "looks.yaml")
    null = stats.norm.sf(np.random.default_rng(0).standard_normal((50, 2)))
    bounds = sequential.boundaries_from_null((2, 4), 0.05, "obf", 0.5, null)
    parent = tracking.create_run("looks", "study looks", {keys.T_KIND: keys.KIND_STUDY}, uri)
    record = {"look": 1, "seeds": 2, "p": 0.001, "boundary_p": bounds.p[0], "decision": "threshold"}
    # The kill came after the parent run got look 1's decision, before the state file did.
    tracking.set_tags(parent, {f"{keys.T_SEQ_LOOK_PREFIX}1": json.dumps(record)}, uri)
    state = {"boundaries": bounds.to_dict(), "look": 1}
    saved = []
    trials, ended = run_looks(
        spec,
        place(tmp_path / "looks"),
        parent,
        uri,
        state,
        lambda s: saved.append(dict(s)),
        _not_called,
        resume=True,
    )
    assert (trials, ended) == ([], True)
    assert recorded_looks(parent, uri) == {1: record}
    assert saved[-1]["looks"] == [record]  # the state caught up with the run


def test_the_launch_says_where_a_sequential_study_stands():
    looks = (2, 4)
    assert looks_summary({}, looks) == "look 1 of 2 not decided yet"
    go_on = {"looks": [{"look": 1, "decision": "continue"}]}
    assert (
        looks_summary(go_on, looks)
        == "look 1 of 2 (2 of 4 seeds): continue; look 2 not decided yet"
    )
    stop = {"looks": [{"look": 1, "decision": "futility"}]}
    assert looks_summary(stop, looks) == "stopped at look 1 of 2 (2 of 4 seeds): futility"
