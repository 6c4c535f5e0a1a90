"""A launch's parent run and its state file, next to Ray's experiment state.

The state file (``<storage>/<study>/capstudy_study.json``) names the study's parent run, the
driver that runs it (so ``capstudy status`` tells a live launch from a dead one) and, for a
sequential study, its boundaries and the looks decided. It is written atomically in both
kinds of storage.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any

from ray import tune
from rich.console import Console

from capstudy import keys, tracking
from capstudy.errors import CapstudyError
from capstudy.launch.scheduler import asha_state_path
from capstudy.storage import Place
from capstudy.study import StudySpec
from capstudy.study.cells import expand_cells

STATE_FILE = "capstudy_study.json"
log = logging.getLogger(__name__)


def parent_run(
    spec: StudySpec,
    opts,
    uri: str,
    exp_path: Place,
    console: Console,
    storage: Place | None = None,
) -> str:
    """The study's parent run: the previous one on --resume, else a new one."""
    state = read_state(exp_path)
    if opts.retry_failed and spec.sequential is not None:
        raise CapstudyError(
            f"--retry-failed reruns one experiment's failed trials; study {spec.name!r} is "
            "sequential (a look decided on its finished trials must not change). Resume it "
            f"with `capstudy launch --space {opts.space} --resume`, or relaunch it."
        )
    if opts.resume or opts.retry_failed:
        # A sequential study keeps its looks' experiments inside its folder.
        restorable = spec.sequential is not None or tune.Tuner.can_restore(str(exp_path))
        if not restorable or not state.get("parent_run_id"):
            raise CapstudyError(
                f"nothing to resume for study {spec.name!r}: no saved experiment at {exp_path}. "
                f"Run `capstudy launch --space {opts.space}` without --resume to start it."
            )
        tracking.reopen_run(state["parent_run_id"], uri)
        doing = "retrying the failed trials of" if opts.retry_failed else "resuming"
        console.print(f"{doing} study {spec.name!r} (parent run {state['parent_run_id']})")
        write_state(exp_path, {**state, "status": "RUNNING", **_driver_id()})
        return state["parent_run_id"]
    if exp_path.exists():
        archived = exp_path.with_name(f"{exp_path.name}.{time.strftime('%Y%m%d-%H%M%S')}")
        exp_path.move(archived)  # remote: a server-side copy per object, then deletes
        if asha_state_path(exp_path).exists():
            asha_state_path(exp_path).move(asha_state_path(archived))
        console.print(f"a previous run of {spec.name!r} was archived to {archived}")
    tags = {
        keys.T_KIND: keys.KIND_STUDY,
        keys.T_STUDY: spec.name,
        keys.T_GIT_COMMIT: tracking.git_commit(),
    }
    if storage is not None:  # where `capstudy status` finds this launch's state
        tags[keys.T_STORAGE] = str(storage)
    parent = tracking.create_run(spec.name, f"study {spec.name}", tags, uri)
    cells = expand_cells(spec)
    tracking.log_params(
        parent,
        {
            "study_file": str(spec.source),
            keys.P_TASK: spec.task,
            keys.P_STUDY_METRIC: spec.metric,
            keys.P_STUDY_MODE: spec.mode,
            "cells": len(cells),
            "samples_per_cell": spec.tune.samples_per_cell,
            "search": spec.tune.search,
            "asha_scope": spec.tune.asha.scope,
            keys.P_EVAL_DOMAINS: ",".join(spec.evaluate),
        },
        uri,
    )
    _log_study_file(parent, spec, uri)
    exp_path.mkdir()
    state = {"parent_run_id": parent, "status": "RUNNING", "study": spec.name, **_driver_id()}
    write_state(exp_path, state)
    return parent


def _driver_id() -> dict:
    """Who runs the study, so `capstudy status` can tell a live launch from a dead one."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _log_study_file(run_id: str, spec: StudySpec, uri: str) -> None:
    tracking.client(uri).log_artifact(run_id, str(spec.source), "study")


def read_state(exp_path: Place) -> dict:
    try:
        return json.loads((exp_path / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def end_state(exp_path: Place, state: dict) -> None:
    """The launch's last state write; a storage that refuses it keeps the state before
    (written atomically: never a partial file) and must not hide why the launch ended."""
    try:
        write_state(exp_path, state)
    except OSError as exc:
        log.warning("could not record the study's state in %s: %s", exp_path, exc)


def write_state(exp_path: Place, state: dict) -> None:
    """Atomically record the study's parent run next to Ray's experiment state.

    Atomic in both kinds of storage (:meth:`capstudy.storage.Place.write_text`): a local
    temporary renamed into place, or one upload to S3/GCS (an object is visible only whole).
    """
    (exp_path / STATE_FILE).write_text(json.dumps(state, indent=1))


def count_trials(trials: list[Any]) -> tuple[int, int]:
    """(trials terminated, trials errored), from Ray's trial states."""
    # ResultGrid hides trial status; a Ctrl-C leaves RUNNING/PENDING trials that have
    # metrics, so "has metrics" would count them as done.
    done = sum(1 for t in trials if t.status == "TERMINATED")
    failed = sum(1 for t in trials if t.status == "ERROR")
    return done, failed
