"""Ray storage in an S3 bucket (``--storage s3://...``), against a real S3 protocol server.

moto's server (``moto[server]``, a dev extra) runs on 127.0.0.1 in this process; pyarrow and
Ray reach it over HTTP exactly as they would reach AWS or MinIO, through the URI's
``endpoint_override`` and ``scheme`` query parameters. Nothing is mocked on the client side:
:mod:`capstudy.storage`, Ray Tune's checkpoint uploads and ``Tuner.restore`` all go through
pyarrow's S3 filesystem.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from s3server import BUCKET, free_port, study_text

from capstudy import keys, tracking
from capstudy.errors import CapstudyError
from capstudy.launch.clusterchecks import ERROR, OK, storage_checks
from capstudy.storage import place

# --- the storage abstraction --------------------------------------------------------------


def test_place_names_objects_as_ray_does(s3_root):
    from ray.air._internal.uri_utils import URI
    from ray.train._internal.storage import get_fs_and_path

    root = place(s3_root)
    exp = root / "study"
    assert str(exp) == str(URI(s3_root) / "study")  # Ray's own join: path before the query
    assert str(exp).endswith("/study?endpoint_override=" + s3_root.split("=", 1)[1])
    assert str(exp.with_name("study.1")) == str(URI(s3_root) / "study.1")
    fs, fs_path = get_fs_and_path(str(exp))  # what Ray opens for the same string
    assert fs.type_name == "s3" and fs_path == f"{BUCKET}/{URI(s3_root).name}/study"
    assert place(str(exp)) == exp  # a place's string opens the same place again


def test_place_reads_writes_and_lists_objects(s3_root):
    root = place(s3_root)
    exp = root / "study"
    assert not exp.exists() and root.children() == []
    with pytest.raises(FileNotFoundError):
        (exp / "state.json").read_text()
    (exp / "state.json").write_text('{"a": 1}')
    (exp / "state.json").write_text('{"a": 2}')  # overwritten whole: one put, no temporary
    assert json.loads((exp / "state.json").read_text()) == {"a": 2}
    assert exp.is_dir() and not exp.is_file() and (exp / "state.json").is_file()
    assert [c.name for c in exp.children()] == ["state.json"]
    assert [c.name for c in root.children()] == ["study"]
    assert (exp / "state.json").mtime() is not None  # status sorts remote studies by it
    assert exp.mtime() is None  # an S3 prefix has no time of its own


def test_moving_a_folder_moves_every_object(s3_root):
    exp = place(s3_root) / "study"
    for name in ("state.json", "trial_a/result.json", "trial_a/checkpoint_000001/x.json"):
        (exp / name).write_text(name)
    archived = exp.with_name("study.20260101-000000")
    exp.move(archived)
    assert not exp.exists()
    assert (archived / "trial_a" / "checkpoint_000001" / "x.json").read_text().startswith("trial")
    assert sorted(c.name for c in archived.children()) == ["state.json", "trial_a"]
    archived.delete()
    assert not archived.exists()


def test_local_place_is_a_path(tmp_path):
    root = place(str(tmp_path / "ray_results"))
    assert root.local == tmp_path / "ray_results" and not root.is_remote
    (root / "s" / "state.json").write_text("x")  # capstudy.util.atomic_write_text
    assert (tmp_path / "ray_results" / "s" / "state.json").read_text() == "x"
    assert [p.name for p in (root / "s").children()] == ["state.json"]  # no temporary left
    assert place(f"file://{tmp_path}/ray_results") == root
    assert place("~/x").local == Path("~/x").expanduser()


def test_recorder_replays_result_json_from_the_bucket(s3_root):
    """The reconcile after a killed driver reads Ray's result.json where Ray put it."""
    from types import SimpleNamespace

    from ray.train._internal.storage import get_fs_and_path

    from capstudy.launch.checkpoints import result_log

    trial_dir = place(s3_root) / "study" / "trial-1"
    (trial_dir / "result.json").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    fs, fs_path = get_fs_and_path(str(trial_dir))  # as Ray's StorageContext holds them
    trial = SimpleNamespace(
        storage=SimpleNamespace(storage_filesystem=fs), path=fs_path, local_path=None
    )
    assert result_log(trial).splitlines() == ['{"epoch": 1}', '{"epoch": 2}']
    trial.path = fs_path + "-missing"
    assert result_log(trial) is None


# --- clear errors before anything starts ------------------------------------------------------


def test_storage_checks_pass_a_writable_bucket_and_leave_nothing(s3_root):
    (check,) = storage_checks(s3_root)
    assert check.level == OK and check.setting == "--storage", check
    assert place(s3_root).children() == []  # the probe object was removed


@pytest.mark.parametrize(
    "uri, says",
    [
        ("foo://bucket/ray", "Unrecognized filesystem type"),
        ("s3://no-such-bucket/ray?endpoint_override={ep}&scheme=http", "bucket does not exist"),
        ("s3://capstudy/ray?endpoint_override=127.0.0.1:{closed}&scheme=http", "connect"),
    ],
    ids=["unknown-scheme", "missing-bucket", "bad-endpoint"],
)
def test_storage_checks_name_the_setting_the_uri_and_the_fix(s3_endpoint, uri, says):
    uri = uri.format(ep=s3_endpoint, closed=free_port())
    (check,) = storage_checks(uri)
    assert check.level == ERROR and check.setting == "--storage"
    assert uri in check.message and says.lower() in check.message.lower(), check.message
    assert "s3://bucket/path?endpoint_override=host:port&scheme=http" in check.message  # the fix


def test_launch_with_an_unusable_storage_starts_nothing(s3_endpoint, tmp_path):
    import ray

    from capstudy.launch.driver import LaunchOptions, launch
    from capstudy.launch.scripted import scripted_trainable

    space = _study(tmp_path)
    bad = f"s3://no-such-bucket/ray?endpoint_override={s3_endpoint}&scheme=http"
    for storage in ("foo://bucket/ray", bad):
        with pytest.raises(CapstudyError, match=r"--storage.*" + storage.split("?")[0]):
            launch(LaunchOptions(space=space, storage=storage), trainable_fn=scripted_trainable)
        assert not ray.is_initialized()
    assert tracking.find_runs("s3study", "", tracking.configure()) == []  # no run, no folder


def test_dry_run_lists_the_storage_check(s3_root, tmp_path, capsys):
    from capstudy.launch.driver import LaunchOptions, launch

    space = _study(tmp_path)
    assert launch(LaunchOptions(space=space, storage=s3_root, dry_run=True)).status == "PLANNED"
    out = capsys.readouterr().out
    assert f"[ok] --storage: {s3_root} (remote; a probe object" in out
    assert "power: n/a (study s3study: init ['random'] needs 'random' and at least one" in out
    with pytest.raises(CapstudyError, match="the settings above hold errors: --storage"):
        launch(LaunchOptions(space=space, storage="foo://bucket/ray", dry_run=True))
    assert "[error] --storage: foo://bucket/ray: pyarrow cannot open" in capsys.readouterr().out


# --- capstudy status on a study whose state is in the bucket --------------------------------------


def test_status_reads_a_study_state_from_the_bucket_its_launch_ran_in(s3_root, capsys):
    from clitools import run_cli

    from capstudy.status.view import STATE_FILE, list_studies, study_state

    uri = tracking.configure()
    tags = {keys.T_KIND: keys.KIND_STUDY, keys.T_STORAGE: s3_root}  # as the driver tags it
    parent = tracking.create_run("remote", "study remote", tags, uri)
    gone = _dead_pid()
    state = {"parent_run_id": parent, "status": "RUNNING", "study": "remote"}
    state.update(pid=gone, host=socket.gethostname())
    exp = place(s3_root) / "remote"
    (exp / STATE_FILE).write_text(json.dumps(state))
    st = study_state(uri, "remote")  # no storage given: the launch's tag names the bucket
    assert st.ray_folder == str(exp)
    assert st.state == "INTERRUPTED"  # the run reads RUNNING, the driver in the state is gone
    assert run_cli(["status", "remote"]) == 0
    assert "INTERRUPTED" in capsys.readouterr().out
    # A study only in the bucket (no MLflow experiment) is listed from --storage.
    (place(s3_root) / "orphan" / STATE_FILE).write_text(json.dumps({"study": "orphan"}))
    (place(s3_root) / "orphan.20260101-000000" / STATE_FILE).write_text('{"study": "old"}')
    rows = {r["study"]: r for r in list_studies(uri, s3_root)}
    assert rows["orphan"]["ray_folder"] == str(place(s3_root) / "orphan")
    assert rows["orphan"]["last_activity"] != "-" and "old" not in rows  # archive skipped


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --- a real launch and resume in the bucket ----------------------------------------------------


def _study(tmp_path: Path) -> str:
    path = tmp_path / "s3study.yaml"
    path.write_text(study_text("s3study", cpu=0.5))
    return str(path)


def _interrupt_when(ready, timeout: float = 120.0) -> threading.Thread:
    """Send SIGUSR1 (Ray Tune's "stop and save") to this process once ``ready()`` holds."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not ready():
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGUSR1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow  # 1.5-2 min on 2 busy cores: three launches, each starting a local Ray
def test_launch_resume_and_relaunch_keep_every_state_in_the_bucket(s3_root, tmp_path, monkeypatch):
    """A real launch (scripted trials, local Ray) with its storage in S3, interrupted once a
    rung has recorded a trial; ``--resume`` finishes it from the bucket (Ray's experiment
    state and capstudy's rungs); then a fresh launch archives it there. Each launch's
    per-node probe also read the driver's probe object from the bucket."""
    import ray

    from capstudy.cli.status import study_report
    from capstudy.launch import driver
    from capstudy.launch.driver import LaunchOptions, launch
    from capstudy.launch.scheduler import asha_state_path
    from capstudy.launch.scripted import EPOCH_SECONDS_ENV, RUNGS_ENV, scripted_trainable
    from capstudy.launch.studyrun import STATE_FILE
    from capstudy.status.view import list_studies

    monkeypatch.setenv(RUNGS_ENV, "1,2")  # checkpoints at the rungs: uploaded to the bucket
    monkeypatch.setenv(EPOCH_SECONDS_ENV, "1")  # slow enough to interrupt mid-study
    # A SIGUSR1 that lands outside Tuner.fit must not end pytest (its default action).
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    loaded: list[dict] = []  # the rungs each --resume started from (a spy, not a stand-in)

    def spy_load_asha(path, fresh):
        asha = real_load_asha(path, fresh)
        loaded.append(json.loads(json.dumps(asha.to_state())))
        return asha

    real_load_asha = driver.load_asha
    monkeypatch.setattr(driver, "load_asha", spy_load_asha)
    space = _study(tmp_path)
    uri = tracking.configure()
    exp = place(s3_root) / "s3study"
    watcher_view = place(s3_root) / "s3study"  # its own S3 client, for the watcher thread
    try:
        _interrupt_when(asha_state_path(watcher_view).exists)
        first = launch(LaunchOptions(space=space, storage=s3_root), trainable_fn=scripted_trainable)
        assert first.status == "KILLED" and first.trials_done < 6, first
        assert first.experiment_path == str(exp)
        state = json.loads((exp / STATE_FILE).read_text())
        assert state["status"] == "KILLED" and state["parent_run_id"] == first.parent_run_id
        assert (exp / "tuner.pkl").is_file()  # Ray's own experiment state, in the bucket
        saved = json.loads(asha_state_path(exp).read_text())
        assert any(saved["cells"].values()), saved
        ray.shutdown()  # each launch starts its own local Ray, as a new driver process would

        again = launch(
            LaunchOptions(space=space, storage=s3_root, resume=True),
            trainable_fn=scripted_trainable,
        )
        assert again.status == "FINISHED" and again.parent_run_id == first.parent_run_id
        assert again.trials_done == 6, again
        assert loaded == [saved]  # the resumed scheduler started from the bucket's rungs
        final = json.loads(asha_state_path(exp).read_text())
        for cell, rungs in saved["cells"].items():  # and kept every value they held
            for rung, values in rungs.items():
                assert values.items() <= final["cells"][cell][rung].items()
        assert json.loads((exp / STATE_FILE).read_text())["status"] == "FINISHED"
        checkpoints = [
            c.name for t in exp.children() if t.is_dir() for c in t.children() if c.is_dir()
        ]
        assert any(n.startswith("checkpoint_") for n in checkpoints), checkpoints
        ray.shutdown()

        third = launch(LaunchOptions(space=space, storage=s3_root), trainable_fn=scripted_trainable)
        assert third.status == "FINISHED" and third.parent_run_id != first.parent_run_id
        archived = [p for p in place(s3_root).children() if p.name.startswith("s3study.2")]
        names = sorted(p.name for p in archived)
        assert len(names) == 2 and names[1] == names[0] + ".asha.json", names  # folder + rungs
        old = json.loads((archived[0] / STATE_FILE).read_text())
        assert old["parent_run_id"] == first.parent_run_id  # the first launch, moved whole
        assert (archived[0] / "tuner.pkl").is_file()
    finally:
        ray.shutdown()
        signal.signal(signal.SIGUSR1, previous)

    assert tracking.find_runs("s3study", "attributes.status = 'RUNNING'", uri) == []
    trials = tracking.find_runs(
        "s3study", f"tags.`{keys.T_PARENT_RUN}` = '{first.parent_run_id}'", uri
    )
    assert len(trials) == 6  # the resume re-ran and duplicated nothing
    # `capstudy status` finds the state in the bucket through the launch's storage tag.
    report = study_report(uri, "s3study")
    assert report["state"] == "FINISHED", report
    assert report["trials"]["done"] + report["trials"]["stopped"] == 6
    (row,) = [r for r in list_studies(uri) if r["study"] == "s3study"]
    assert row["ray_folder"] == str(exp)
