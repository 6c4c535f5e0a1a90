"""The MLflow UI shows a study's runs and metrics (slow: a real server and headless Chromium).

Starts ``mlflow server`` on loopback, launches a small study through capstudy's real driver
tracked by it (scripted trials, so nothing trains: the runs, names, params and tags are what
``capstudy launch`` records), then renders the UI pages with headless Chromium
(``--dump-dom`` for checks, ``--screenshot`` for a picture). Needs the Debian package
``chromium``: ``.ci/run`` installs it with apt-get where it can; without it the test skips
with that reason. The server runs in its own process group, which is always terminated.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from e2e_helpers import CHROMIUM, headless_chromium

from capstudy import keys

pytestmark = pytest.mark.slow

STUDY = "ui_study"


UI_STUDY = f"""
study: {{name: {STUDY}, task: detection, metric: val/map50, mode: max}}
fixed: {{epochs: 3}}
space:
  family: {{grid_search: [efficientnet_b0]}}
  phi: {{grid_search: [0, -4]}}
  init: {{grid_search: [random, imagenet]}}
  train: {{grid_search: [synth_a/rgb]}}
  seed: {{grid_search: [0]}}
  lr: {{loguniform: [1.0e-3, 1.0e-2]}}
evaluate: [synth_a/rgb, synth_a/ir]
tune: {{samples_per_cell: 1, search: random, asha: {{grace: 1, reduction: 2, scope: cell}}}}
resources: {{cpu: 0.5, gpu: 0}}
"""


def _launch_study(url: str, folder: Path) -> tuple[str, list[str]]:
    """Launch a 4-trial study through capstudy's real driver, tracked by the server.

    The trials are scripted (no training: :mod:`capstudy.launch.scripted`), everything else
    -- searcher, scheduler, recorder, run names, params, tags -- is what ``capstudy launch``
    records. Returns the experiment id and the trial run ids.
    """
    from mlflow.tracking import MlflowClient

    space = folder / f"{STUDY}.yaml"
    space.write_text(UI_STUDY)
    env = {**os.environ, "CAPSTUDY_HOME": str(folder / "home"), "MLFLOW_TRACKING_URI": url}
    bench = Path(__file__).parents[2] / "benchmarks" / "full_grid_shape.py"
    cmd = [sys.executable, str(bench), "--drive", "--space", str(space)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(url)
    exp_id = client.get_experiment_by_name(STUDY).experiment_id
    runs = client.search_runs([exp_id], f"tags.`{keys.T_KIND}` = '{keys.KIND_TRIAL}'")
    return exp_id, [r.info.run_id for r in runs]


def _compare_url(base: str, exp_id: str, run_ids: list[str]) -> str:
    runs = urllib.parse.quote(json.dumps(run_ids))
    return (
        f"{base}/#/compare-runs?runs={runs}&experiments={urllib.parse.quote(json.dumps([exp_id]))}"
    )


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs the Debian package chromium (apt-get install chromium)"
)
def test_ui_shows_study_runs_and_metrics(mlflow_server, tmp_path):
    exp_id, children = _launch_study(mlflow_server, tmp_path)
    assert len(children) == 4
    profile = tmp_path / "chromium-profile"

    # The experiment's runs page: the study's parent run, its trials nested under it.
    runs_dom = headless_chromium(
        ["--dump-dom", f"{mlflow_server}/#/experiments/{exp_id}/runs"], profile
    )
    assert f">study {STUDY}<" in runs_dom.stdout, runs_dom.stderr[-2000:]
    assert re.search(r"<strong>5</strong> matching runs", runs_dom.stdout)

    # The compare view of the four trials: names, design params and metrics side by side.
    compare = _compare_url(mlflow_server, exp_id, children)
    dom = headless_chromium(["--dump-dom", compare], profile).stdout
    texts = (
        "B0 ",
        "B-4 ",
        "random",
        "imagenet",
        "efficientnet_b0",
        "val/map50",
        "eval/synth_a/ir/map50",
        "capacity/backbone_params",
    )
    for text in texts:
        assert text in dom, f"{text!r} not shown in the compare view"

    shot = Path(os.environ.get("CAPSTUDY_UI_SCREENSHOT", tmp_path / "mlflow_ui.png"))
    shot.parent.mkdir(parents=True, exist_ok=True)
    headless_chromium([f"--screenshot={shot}", compare], profile)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
