"""Who may write: the shipped tracking server recipe (launch/cluster/mlflow-server.sh, MLflow's
basic-auth app) refuses writes without a login, a launch logs in from the environment and
records the password nowhere, and registered weights replaced in the artifact root are
refused by the trial that would load them."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
import ray
from e2e_helpers import HERE, MlflowServer, capstudy, run_rows
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from capstudy import keys, registry, tracking
from capstudy.data import dataset_fingerprint
from capstudy.launch.clusterchecks import ERROR, OK, cluster_checks, tracking_checks
from capstudy.pretrain import settings_hash, stage_config, stage_settings
from capstudy.study import load
from capstudy.variants import make_variant

pytestmark = pytest.mark.slow
USER = "capstudy"
LOGIN_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
LOG_SUFFIXES = (".log", ".out", ".err")

# One trial that loads registered imagenet weights (run with no retries: it fails at once).
STUDY = HERE / "pretrained.yaml"


@pytest.fixture
def password() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture
def auth_server(tmp_path, password, monkeypatch):
    """The recipe's server on loopback, its admin ``USER`` / ``password``; the environment of
    this test starts without a login (each test sets it)."""
    for name in LOGIN_ENV:
        monkeypatch.delenv(name, raising=False)
    server = MlflowServer(tmp_path, login=(USER, password))
    try:
        yield server.start()
    finally:
        server.stop()


def _login(monkeypatch, password: str) -> None:
    monkeypatch.setenv(LOGIN_ENV[0], USER)
    monkeypatch.setenv(LOGIN_ENV[1], password)


def test_a_write_without_a_login_is_refused_and_the_check_says_what_to_set(
    auth_server, password, tmp_path, monkeypatch
):
    with pytest.raises(MlflowException, match="401"):
        MlflowClient(auth_server).create_experiment("vandal")
    (check,) = tracking_checks(auth_server, "auto")
    assert check.level == ERROR
    assert "HTTP 401" in check.message and "MLFLOW_TRACKING_USERNAME" in check.message
    assert "not set" in check.message

    monkeypatch.setenv(LOGIN_ENV[0], USER)
    monkeypatch.setenv(LOGIN_ENV[1], "not-the-password")
    with pytest.raises(MlflowException, match="401"):
        MlflowClient(auth_server).create_experiment("vandal")
    (check,) = tracking_checks(auth_server, "auto")
    assert check.level == ERROR and "refused the login" in check.message
    assert "not-the-password" not in check.message

    # Nodes whose `ray start` ran without the login: the per-node probe names them.
    for name in LOGIN_ENV:
        monkeypatch.delenv(name)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        checks, _ = cluster_checks(tmp_path / "storage", auth_server, 1, 0)
    finally:
        ray.shutdown()
    (refused,) = [c for c in checks if c.setting == "--tracking-uri"]
    assert refused.level == ERROR and "refuses nodes" in refused.message
    assert "where each node's `ray start` runs" in refused.message

    _login(monkeypatch, password)
    assert MlflowClient(auth_server).create_experiment("owner")
    (check,) = tracking_checks(auth_server, "auto")
    assert check.level == OK
    # A password written into the URI is refused, and not repeated.
    with_password = auth_server.replace("://", f"://{USER}:{password}@")
    (check,) = tracking_checks(with_password, None)
    assert check.level == ERROR and password not in check.message


def _everything_recorded(db: Path) -> str:
    """Every param, tag and model-version tag value in the server's store, as one text."""
    con = sqlite3.connect(db)
    try:
        rows = [
            str(value)
            for table, column in (
                ("params", "value"),
                ("tags", "value"),
                ("experiment_tags", "value"),
                ("model_version_tags", "value"),
                ("registered_model_tags", "value"),
            )
            for (value,) in con.execute(f"select {column} from {table}")  # noqa: S608
        ]
    finally:
        con.close()
    return "\n".join(rows)


def test_a_launch_logs_in_from_the_environment_and_records_the_password_nowhere(
    auth_server, password, tmp_path, monkeypatch
):
    _login(monkeypatch, password)
    # Ray's logs of this launch in a folder of the test's own (a short path: Ray's sockets).
    # Ray writes a runtime_env's variables into them, which is why the driver never passes
    # the login that way (a local launch's workers inherit it).
    ray_tmp = Path(tempfile.mkdtemp(prefix="ra", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    try:
        args = ["launch", "--space", str(HERE / "tiny.yaml"), "--tracking-uri", auth_server]
        proc = capstudy(args, tmp_path / "home", timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert sorted(s for _, s, _ in run_rows(tmp_path, "trial")) == ["FINISHED"] * 4
        assert password not in proc.stdout + proc.stderr
        assert password not in _everything_recorded(tmp_path / "mlflow.db")
        assert password not in (tmp_path / "server.log").read_text()
        logs = [p for p in ray_tmp.rglob("*") if p.is_file() and p.suffix in LOG_SUFFIXES]
        assert logs
        assert not [p for p in logs if password.encode() in p.read_bytes()]
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _register_for_the_study(study: Path, home: Path, uri: str, payload: bytes) -> str:
    """Register ``payload`` as the imagenet weights the study's launch will reuse (the version
    its pretraining settings match); returns the registered model's name."""
    spec = load(str(study))
    variant = make_variant("efficientnet_b0", -7)
    st = stage_settings("imagenet", settings=spec.pretrain.settings(), roots=dict(spec.data))
    config = stage_config(variant, st)
    digest = settings_hash(config, dataset_fingerprint(st.domain, "train", dict(st.roots)), None)
    name = registry.registered_name(variant, "imagenet")
    run_id = tracking.create_run(keys.PRETRAIN_EXPERIMENT, "imagenet", {}, uri)
    weights = home / registry.WEIGHTS_FILE
    weights.write_bytes(payload)
    sha256 = registry.log_weights(run_id, weights, uri)
    tracking.end_run(run_id, "FINISHED", uri)
    tags = {keys.T_STAGE: "imagenet", keys.T_SETTINGS: digest}
    registry.register_weights(run_id, name, tags, uri, sha256=sha256)
    return name


def test_weights_replaced_in_the_artifact_root_fail_the_trial_naming_the_version(
    auth_server, password, tmp_path, monkeypatch
):
    _login(monkeypatch, password)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CAPSTUDY_HOME", str(home))
    monkeypatch.setenv("CAPSTUDY_SYNTH_SCALE", "0.15")  # as the launch below sees the data
    name = _register_for_the_study(STUDY, home, auth_server, b"the registered weights")
    (stored,) = (tmp_path / "artifacts").rglob(f"weights/{registry.WEIGHTS_FILE}")
    stored.write_bytes(b"weights someone put in their place")

    args = ["launch", "--space", str(STUDY), "--tracking-uri", auth_server, "--max-failures", "0"]
    proc = capstudy(args, home, timeout=300)
    out = proc.stdout + proc.stderr
    assert "pretraining: reusing 1 registered weights" in out, out[-3000:]
    con = sqlite3.connect(tmp_path / "mlflow.db")
    try:
        errors = con.execute("select value from tags where key = ?", (keys.T_ERROR,)).fetchall()
    finally:
        con.close()
    assert [s for _, s, _ in run_rows(tmp_path, "trial")] == ["FAILED"], out[-3000:]
    (error,) = [value for (value,) in errors]
    # The tag (its first 300 characters) names the version and the whole fix.
    assert f"registered weights {name} version 1 fail their sha256 check" in error
    assert "delete this version from the registry, then `capstudy launch" in error
    assert "--retry-failed STUDY` pretrains it anew" in error
    assert password not in out
