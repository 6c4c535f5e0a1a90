"""A command that creates a fresh MLflow store prints no store set-up lines (launch/quiet.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from capstudy.launch.quiet import INFO_NOISE, NOISE, quiet_store_setup, quiet_third_parties

SETUP_LINES = ("Creating initial MLflow database tables", "Updating database tables", "alembic")


def _capstudy(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "capstudy.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_fresh_store_commands_print_no_setup_lines(capstudy_home):
    listed = _capstudy(["ls"])
    assert listed.returncode == 0, listed.stderr
    assert (capstudy_home / "mlflow.db").is_file()  # the command created the store
    assert not [line for line in SETUP_LINES if line in listed.stderr], listed.stderr
    (capstudy_home / "mlflow.db").unlink()
    analyzed = _capstudy(["analyze", "--study", "nothing", "--no-mlflow"])
    assert analyzed.returncode == 2 and (capstudy_home / "mlflow.db").is_file()
    assert "error: no study named 'nothing'" in analyzed.stderr  # errors still come
    assert not [line for line in SETUP_LINES if line in analyzed.stderr], analyzed.stderr


def test_setup_lines_come_back_when_asked_for(capstudy_home):
    # The control: without the quieting (MLflow's INFO asked for), a fresh store prints them.
    listed = _capstudy(["ls"], MLFLOW_LOGGING_LEVEL="INFO")
    assert listed.returncode == 0, listed.stderr
    assert "Creating initial MLflow database tables" in listed.stderr


def test_quieted_loggers_keep_warnings_and_errors(monkeypatch):
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    quiet_store_setup()
    for name, _ in INFO_NOISE:
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO)
        assert logger.isEnabledFor(logging.WARNING) and logger.isEnabledFor(logging.ERROR)


def test_analyze_takes_the_study_name_as_status_does(capstudy_home, capsys):
    """`capstudy analyze smoke` as `capstudy status smoke`: the positional name is the study."""
    from clitools import run_cli

    assert run_cli(["analyze", "nothing", "--no-mlflow"]) == 2
    err = capsys.readouterr().err
    assert "no study named 'nothing'" in err and "Default" not in err


def test_each_silenced_message_is_dropped_and_its_neighbours_kept(caplog, monkeypatch):
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")  # what it sets; restored after the test
    quiet_third_parties()
    caplog.set_level(logging.INFO)
    for name, prefix, _ in NOISE:
        logging.getLogger(name).warning(prefix + " (details)")
        logging.getLogger(name).warning("something else from " + name)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if m.endswith("(details)")], messages
    assert len(messages) == len(NOISE)


def test_a_local_ray_starts_without_its_start_up_line():
    """Real Ray, started twice in one process: before the filters its INFO start-up line is
    printed (the control), after them it is not."""
    script = (
        "import sys, ray\n"
        "from capstudy.launch.quiet import quiet_third_parties\n"
        "ray.init(num_cpus=1, include_dashboard=False); ray.shutdown()\n"
        "print('--- quiet from here', file=sys.stderr, flush=True)\n"
        "quiet_third_parties()\n"
        "ray.init(num_cpus=1, include_dashboard=False); ray.shutdown()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    before, _, after = done.stderr.partition("--- quiet from here")
    assert "Started a local Ray instance" in before
    assert "Started a local Ray instance" not in after, after
