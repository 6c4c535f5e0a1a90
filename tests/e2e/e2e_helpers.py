"""Helpers for end-to-end tests: run the real CLI in a subprocess, read the real store."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from capstudy import keys

HERE = Path(__file__).parent


def capstudy(
    args: list[str], home: Path, timeout: int = 1200, synth_scale: str | None = "0.15", **kw
) -> subprocess.CompletedProcess:
    """``capstudy ARGS`` with CAPSTUDY_HOME=home, output captured.

    ``synth_scale`` shrinks the on-demand synthetic data (None: the shipped size).
    """
    env = {**os.environ, "CAPSTUDY_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("CAPSTUDY_SYNTH_SCALE", None)
    if synth_scale is not None:
        env["CAPSTUDY_SYNTH_SCALE"] = synth_scale
    return subprocess.run(
        [sys.executable, "-m", "capstudy.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def run_rows(home: Path, kind: str) -> list[tuple[str, str, str]]:
    """(run id, status, trial id tag) of every run of ``kind`` in the home's SQLite store."""
    con = sqlite3.connect(home / "mlflow.db")
    try:
        return con.execute(
            """
            select r.run_uuid, r.status, coalesce(t2.value, '')
            from runs r
            join tags t on t.run_uuid = r.run_uuid and t.key = ? and t.value = ?
            left join tags t2 on t2.run_uuid = r.run_uuid and t2.key = ?
            """,
            (keys.T_KIND, kind, keys.T_TRIAL_ID),
        ).fetchall()
    finally:
        con.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
