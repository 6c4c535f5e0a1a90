"""The analysis report opens with its headline figure, as a file and from the MLflow UI
(slow: a real ``mlflow server`` and headless Chromium; skipped without Chromium)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from clitools import run_cli
from e2e_helpers import CHROMIUM, headless_chromium
from mlflow.tracking import MlflowClient

from capstudy import keys

pytestmark = pytest.mark.slow


def test_report_and_mlflow_run_open_with_the_headline_figure(mlflow_server, tmp_path):
    if CHROMIUM is None:
        print("skipped: headless Chromium is not installed (apt-get install chromium)")
        pytest.skip("needs the Debian package chromium (apt-get install chromium)")
    from analysis_helpers_path import log_simulated

    exp_id = log_simulated(mlflow_server, np.random.default_rng(3))
    out = tmp_path / "out"
    args = [
        "analyze",
        "--study",
        "browser",
        "--tracking-uri",
        mlflow_server,
        "--out",
        str(out),
        "--find-threshold",
        "--bootstrap",
        "100",
    ]
    assert run_cli(args) == 0
    profile = tmp_path / "profile"

    # The report file: the headline section (figure, verdict table) comes before the rest.
    dom = headless_chromium(["--dump-dom", (out / "report.html").as_uri()], profile).stdout
    headline = dom.index('id="headline-figure"')
    assert headline < dom.index("Conclusions")
    assert re.search(r'id="headline-figure"><img alt="Figure 1[^"]*" src="data:image/png', dom)
    assert 'id="verdicts"' in dom

    # The analysis run in the MLflow UI: its description leads with the headline, and the
    # figure is among its artifacts, shown as an image.
    client = MlflowClient(mlflow_server)
    (run,) = client.search_runs([exp_id], f"tags.`{keys.T_KIND}` = 'analysis'")
    run_url = f"{mlflow_server}/#/experiments/{exp_id}/runs/{run.info.run_id}"
    page = headless_chromium(["--dump-dom", run_url], profile).stdout
    assert "Headline" in page, page[-2000:]
    art = headless_chromium(
        ["--dump-dom", f"{run_url}/artifacts/paper/figure1.png"], profile
    ).stdout
    assert re.search(r"<img[^>]+figure1\.png", art), art[-3000:]
    shot = tmp_path / "analysis_run.png"
    headless_chromium([f"--screenshot={shot}", f"{run_url}/artifacts/paper/figure1.png"], profile)
    assert shot.stat().st_size > 10_000
