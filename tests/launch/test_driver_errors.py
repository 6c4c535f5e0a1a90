"""Bad input stops ``capstudy launch`` before anything starts, and loses nothing."""

from __future__ import annotations

import pytest
from clitools import run_cli

from capstudy import tracking
from capstudy.errors import CapstudyError
from capstudy.launch.driver import LaunchOptions, launch


def test_missing_real_datasets_fail_before_ray_or_mlflow(capstudy_home):
    with pytest.raises(CapstudyError) as info:
        launch(LaunchOptions(space="full_grid"))
    message = str(info.value)
    assert "full_grid.yaml" in message and "not on this machine" in message
    for name in ("flir", "llvip", "imagenet", "coco"):
        assert f"{name} (looked in {capstudy_home / 'data' / name})" in message
    assert tracking.find_runs("full_grid", "") == []  # no parent run was opened
    assert not (capstudy_home / "ray_results" / "full_grid").exists()


def test_dry_run_prints_the_plan_even_without_the_datasets(capsys):
    assert run_cli(["launch", "--space", "full_grid", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cells                        720" in out
    assert "trials                       2880" in out
    assert "dataset 'imagenet' not found" in out


def test_unknown_space_is_a_clean_error(capsys):
    assert run_cli(["launch", "--space", "no_such_study"]) == 2
    assert "no_such_study" in capsys.readouterr().err


def test_sqlite_tracking_with_a_cluster_address_stops_before_anything(capstudy_home, capsys):
    # The "done when" command: refused before Ray, MLflow or any folder is touched.
    db = capstudy_home / "x.db"
    args = [
        "launch",
        "--space",
        "full_grid",
        "--address",
        "auto",
        "--tracking-uri",
        f"sqlite:///{db}",
    ]
    assert run_cli(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"--tracking-uri: sqlite:///{db} is a file on this machine" in err
    assert "mlflow server --app-name basic-auth --host 0.0.0.0" in err
    assert "--tracking-uri http://<head>:5000" in err
    assert not db.exists()
    assert not (capstudy_home / "ray_results").exists()


def test_dry_run_prints_the_checked_settings(capsys):
    assert run_cli(["launch", "--space", "full_grid", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "settings:" in out and "[ok] --tracking-uri: sqlite:///" in out


def test_dry_run_with_a_settings_error_prints_the_whole_plan_then_exits_2(capstudy_home, capsys):
    db = capstudy_home / "x.db"
    args = ["launch", "--space", "full_grid", "--dry-run", "--address", "auto"]
    assert run_cli([*args, "--tracking-uri", f"sqlite:///{db}"]) == 2
    captured = capsys.readouterr()
    out = captured.out
    assert "trials                       2880" in out and "cost: " in out
    assert "power" in out and "settings:" in out
    assert f"[error] --tracking-uri: sqlite:///{db} is a file on this machine" in out
    assert out.index("trials ") < out.index("settings:")  # the plan first, then the settings
    assert "error: the settings above hold errors: --tracking-uri" in captured.err
    assert not db.exists()


def test_hpo_seed_is_the_option_and_seed_its_hidden_former_name(monkeypatch, capsys):
    from capstudy.launch import driver

    seen = []

    def fake_launch(opts, console):
        seen.append(opts.seed)
        return driver.LaunchOutcome("smoke", None, 48, 0, 0, "PLANNED", None)

    monkeypatch.setattr(driver, "launch", fake_launch)
    assert run_cli(["launch", "--space", "smoke", "--dry-run", "--hpo-seed", "7"]) == 0
    assert run_cli(["launch", "--space", "smoke", "--dry-run", "--seed", "5"]) == 0
    assert seen == [7, 5]
    assert run_cli(["launch", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--hpo-seed" in shown and "--seed " not in shown
