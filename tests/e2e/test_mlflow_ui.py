"""The MLflow UI shows a study's runs and metrics (slow: a real server and headless Chromium).

Starts ``mlflow server`` on loopback, logs a small study over HTTP with the keys of
``capstudy.keys`` (parent run kind=study, child runs kind=trial with the compare-view params),
then renders the UI pages with headless Chromium (``--dump-dom`` for checks, ``--screenshot``
for a picture). Needs the Debian package ``chromium`` (skipped when absent). The server is
started in its own process group and that group is always terminated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from capstudy import keys

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STUDY = "ui_study"


def _log_study(url: str) -> tuple[str, list[str]]:
    """A parent study run and four trial runs, logged over HTTP; returns ids."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp_id = client.create_experiment(STUDY)
    tags = {keys.T_KIND: keys.KIND_STUDY, keys.T_STUDY: STUDY, "mlflow.runName": "study"}
    parent = client.create_run(exp_id, tags=tags).info.run_id
    children = []
    for phi, init in ((0, "random"), (0, "imagenet"), (-4, "random"), (-4, "imagenet")):
        name = f"B{phi}-{init}"
        run = client.create_run(exp_id, tags={"mlflow.runName": name, keys.T_PARENT_RUN: parent})
        params = {
            keys.P_FAMILY: "efficientnet_b0",
            keys.P_PHI: phi,
            keys.P_LABEL: f"B{phi}",
            keys.P_INIT: init,
            keys.P_TRAIN_DOMAIN: "synth_a/rgb",
            keys.P_SEED: 0,
            keys.P_EVAL_DOMAINS: "synth_a/rgb,synth_a/ir",
            keys.P_STUDY_METRIC: "val/map50",
        }
        value = 0.4 + 0.1 * (init == "imagenet") + 0.02 * phi
        now = int(time.time() * 1000)
        metrics = [Metric("val/map50", value * (e + 1) / 3, now + e, e) for e in range(3)]
        metrics += [
            Metric(keys.eval_metric("synth_a/ir", "map50"), value - 0.1, now, 2),
            Metric(keys.M_BACKBONE_PARAMS, 3.6e6 / 2.1 ** (-phi), now, 0),
        ]
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(keys.T_KIND, keys.KIND_TRIAL), RunTag(keys.T_STUDY, STUDY)],
        )
        client.set_terminated(run.info.run_id)
        children.append(run.info.run_id)
    client.set_terminated(parent)
    return exp_id, children


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=30000",
        "--window-size=1400,900",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180, check=False
    )


def _compare_url(base: str, exp_id: str, run_ids: list[str]) -> str:
    runs = urllib.parse.quote(json.dumps(run_ids))
    return (
        f"{base}/#/compare-runs?runs={runs}&experiments={urllib.parse.quote(json.dumps([exp_id]))}"
    )


@pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian package chromium")
def test_ui_shows_study_runs_and_metrics(mlflow_server, tmp_path):
    exp_id, children = _log_study(mlflow_server)
    profile = tmp_path / "chromium-profile"

    # The experiment's runs page: the study's parent run, its trials nested under it.
    runs_dom = _chromium(["--dump-dom", f"{mlflow_server}/#/experiments/{exp_id}/runs"], profile)
    assert ">study<" in runs_dom.stdout, runs_dom.stderr[-2000:]
    assert re.search(r"<strong>5</strong> matching runs", runs_dom.stdout)

    # The compare view of the four trials: names, design params and metrics side by side.
    compare = _compare_url(mlflow_server, exp_id, children)
    dom = _chromium(["--dump-dom", compare], profile).stdout
    for text in (
        "B0-random",
        "B0-imagenet",
        "B-4-random",
        "B-4-imagenet",
        "efficientnet_b0",
        "val/map50",
        "eval/synth_a/ir/map50",
        "capacity/backbone_params",
    ):
        assert text in dom, f"{text!r} not shown in the compare view"

    shot = Path(os.environ.get("CAPSTUDY_UI_SCREENSHOT", tmp_path / "mlflow_ui.png"))
    shot.parent.mkdir(parents=True, exist_ok=True)
    _chromium([f"--screenshot={shot}", compare], profile)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
