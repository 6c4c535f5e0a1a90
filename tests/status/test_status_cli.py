"""``capstudy ls`` / ``capstudy status`` on a real SQLite MLflow store and a Ray folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from clitools import run_cli
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from capstudy import keys, paths
from capstudy.status.view import STATE_FILE, list_studies, study_state


def _trial(client, exp_id, parent, label, phi, init, seed, status, val=None, **extra):
    tags = {
        keys.T_KIND: keys.KIND_TRIAL,
        keys.T_PARENT_RUN: parent,
        keys.T_TRIAL_ID: f"{label}-{init}-{seed}-{status}",
        keys.T_CELL: f"{label}|{init}|{seed}",
        **extra.get("tags", {}),
    }
    rid = client.create_run(exp_id, tags=tags).info.run_id
    params = {
        keys.P_FAMILY: "efficientnet_b0",
        keys.P_PHI: phi,
        keys.P_LABEL: label,
        keys.P_INIT: init,
        keys.P_TRAIN_DOMAIN: "synth_a/rgb",
        keys.P_SEED: seed,
    }
    now = int(time.time() * 1000)
    metrics = [Metric(keys.M_BACKBONE_PARAMS, 17400.0 if phi == -7 else 28396.0, now, 0)]
    if val is not None:
        metrics += [
            Metric("val/map50", val, now, 2),
            Metric("eval/synth_a/ir/map50", val / 2, now, 2),
        ]
        metrics += [Metric(keys.M_DEVICE_SECONDS, 30.0, now, 2)]
    client.log_batch(
        rid,
        metrics=metrics,
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(keys.T_EARLY_STOPPED, extra.get("early", "false"))],
    )
    if status != "RUNNING":
        client.set_terminated(rid, status=status)
    return rid


def _study(state_status="FINISHED", pid=None):
    """A study 'demo' with one launch: done, early-stopped, failed and running trials."""
    uri = paths.default_tracking_uri()
    client = MlflowClient(uri)
    exp_id = client.create_experiment("demo")
    parent = client.create_run(exp_id, tags={keys.T_KIND: keys.KIND_STUDY}).info.run_id
    client.log_batch(
        parent,
        params=[
            Param(keys.P_STUDY_METRIC, "val/map50"),
            Param(keys.P_EVAL_DOMAINS, "synth_a/ir"),
            Param("study_file", "/nowhere/demo.yaml"),
        ],
    )
    _trial(client, exp_id, parent, "B-7", -7, "random", 0, "FINISHED", 0.20)
    _trial(client, exp_id, parent, "B-7", -7, "random", 1, "FINISHED", 0.10, early="true")
    _trial(client, exp_id, parent, "B-6", -6, "imagenet", 0, "FINISHED", 0.40)
    err = {keys.T_ERROR: "FloatingPointError: training diverged in epoch 2"}
    _trial(client, exp_id, parent, "B-6", -6, "random", 0, "FAILED", tags=err)
    _trial(client, exp_id, parent, "B-6", -6, "random", 1, "FAILED", tags=err)
    folder = paths.ray_storage() / "demo"
    folder.mkdir(parents=True)
    state = {"parent_run_id": parent, "status": state_status, "study": "demo"}
    if pid is not None:
        state.update(pid=pid, host=socket.gethostname())
    (folder / STATE_FILE).write_text(json.dumps(state))
    if state_status == "RUNNING":
        _trial(client, exp_id, parent, "B-6", -6, "imagenet", 1, "RUNNING", 0.30)
    else:
        client.set_terminated(parent, status=state_status)
    return uri, parent


def test_status_groups_by_variant_and_init_and_failures_by_cause(capsys):
    _study()
    assert run_cli(["status", "demo"]) == 0
    out = capsys.readouterr().out
    assert "study demo: FINISHED" in out
    assert "trials: 2 done, 1 stopped early, 0 running, 2 failed" in out
    assert "2 x FloatingPointError: training diverged in epoch 2" in out
    assert "capstudy launch --retry-failed demo" in out
    assert "capstudy analyze --study demo --find-threshold" in out
    lines = {
        ln.split()[0] + " " + ln.split()[1]: ln for ln in out.splitlines() if ln[:2] in ("B-",)
    }
    assert "0.2000" in lines["B-7 random"]  # best val/map50 so far over both seeds


def test_status_json_is_for_scripts(capsys):
    _study()
    assert run_cli(["status", "demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["trials"] == {"done": 2, "stopped": 1, "running": 0, "failed": 2, "killed": 0}
    rows = {(r["variant"], r["init"]): r for r in report["variants"]}
    assert rows[("B-7", "random")]["selected"] == pytest.approx(0.15)  # mean of cell bests
    assert rows[("B-7", "random")]["eval"] == {"synth_a/ir": pytest.approx(0.075)}
    assert rows[("B-6", "random")]["failed"] == 2
    assert report["failures"][0]["count"] == 2
    # One train domain: the table leaves its column out, the JSON still names it.
    assert {r["train"] for r in report["variants"]} == {"synth_a/rgb"}


def test_a_running_study_with_a_live_driver_reads_running(capsys):
    _study("RUNNING", pid=os.getpid())
    st = study_state(paths.default_tracking_uri(), "demo")
    assert st.state == "RUNNING" and st.counts()["running"] == 1
    assert run_cli(["status"]) == 0  # the latest study by default
    assert "still running" in capsys.readouterr().out


def test_a_dead_driver_reads_interrupted_and_says_resume(capsys):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    _study("RUNNING", pid=int(dead))
    assert run_cli(["status", "demo"]) == 0
    out = capsys.readouterr().out
    assert "INTERRUPTED" in out
    assert "capstudy launch --space /nowhere/demo.yaml --resume" in out


def test_ls_lists_mlflow_and_ray_only_studies(capsys):
    _study()
    other = paths.ray_storage() / "orphan"
    other.mkdir(parents=True)
    (other / STATE_FILE).write_text(json.dumps({"study": "orphan", "status": "KILLED"}))
    rows = {r["study"]: r for r in list_studies(paths.default_tracking_uri())}
    assert rows["demo"]["failed"] == 2 and rows["demo"]["in_mlflow"]
    assert rows["orphan"]["state"] == "KILLED" and not rows["orphan"]["in_mlflow"]
    assert run_cli(["ls"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "orphan" in out


def test_unknown_study_is_a_clean_error(capsys):
    _study()
    assert run_cli(["status", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no study 'nope'" in err and "demo" in err


def test_retry_failed_refuses_a_study_without_failures(capsys):
    uri, _ = _study()
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("demo")
    for run in client.search_runs([exp.experiment_id], "attributes.status = 'FAILED'"):
        client.delete_run(run.info.run_id)
    assert run_cli(["launch", "--retry-failed", "demo"]) == 2
    assert "no FAILED trials" in capsys.readouterr().err
