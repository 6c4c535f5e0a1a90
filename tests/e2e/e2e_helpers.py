"""Helpers for end-to-end tests: run the real CLI in a subprocess, read the real store."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from capstudy import keys

HERE = Path(__file__).parent
RAY = str(Path(sys.executable).with_name("ray"))
SERVER_SCRIPT = HERE.parents[1] / "launch" / "cluster" / "mlflow-server.sh"


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


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 over ``folder/mlflow.db``; stoppable, restartable.

    Restarting serves the same store on the same port (a tracking server that went away and
    came back). With ``login=(user, password)`` it is the shipped recipe
    (``launch/cluster/mlflow-server.sh``: MLflow's basic-auth app, whose admin user is that
    login, given to it in the environment only).
    """

    def __init__(self, folder: Path, login: tuple[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.login = login
        self.proc: subprocess.Popen | None = None
        self._log = None

    def _command(self) -> tuple[list[str], dict[str, str]]:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(name, None)
        artifacts = str(self.folder / "artifacts")
        if self.login is not None:
            env.update(
                MLFLOW_TRACKING_USERNAME=self.login[0],
                MLFLOW_TRACKING_PASSWORD=self.login[1],
                MLFLOW_HOST="127.0.0.1",
                PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            )
            return ["bash", str(SERVER_SCRIPT), str(self.folder), artifacts, str(self.port)], env
        store = f"sqlite:///{self.folder}/mlflow.db"
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--workers", "1", "--backend-store-uri", store]
        return [*cmd, "--default-artifact-root", artifacts], env

    def start(self, timeout: float = 90) -> str:
        """Start it and wait until ``/health`` answers; returns the URL."""
        cmd, env = self._command()
        self._log = (self.folder / "server.log").open("a")
        # Own session: the server forks workers; killing its process group stops all of them.
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self.url
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server not healthy after {timeout}s: {self._tail()}")

    def stop(self) -> None:
        """Stop the server and its workers (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail(self) -> str:
        return (self.folder / "server.log").read_text()[-2000:]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def headless_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    """Run headless Chromium (Debian's package) with ``args``; no network beyond loopback."""
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
        "--allow-file-access-from-files",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180, check=False
    )


def ray_start(args: list[str], env: dict) -> None:
    """`ray start ARGS` with ``env`` (a head or a worker node on this machine)."""
    subprocess.run([RAY, "start", *args], env=env, check=True, capture_output=True, timeout=120)


def node_processes(home: Path) -> list[int]:
    """PIDs of the processes of the Ray node started with ``CAPSTUDY_HOME=home``: its raylet,
    agents and trial workers (they inherit the node's environment), and nothing else."""
    needle = f"CAPSTUDY_HOME={home}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return pids


def kill_node(home: Path) -> list[int]:
    """SIGKILL every process of the node with ``home`` (a lost machine); returns the PIDs."""
    pids = node_processes(home)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            os.kill(pid, signal.SIGKILL)
    return pids


def wait_for_nodes(address: str, count: int, timeout: float = 60) -> str:
    """``ray status`` output once ``count`` nodes are active (a worker registers late)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            [RAY, "status", "--address", address], capture_output=True, text=True, timeout=60
        ).stdout
        if out.count(" node_") >= count or time.monotonic() > deadline:
            return out
        time.sleep(2)


def forget_cluster(address: str) -> None:
    """Remove the address file `ray start --head` wrote for the cluster at ``address``, as
    `ray stop` would: a stale one makes every later `ray.init()` on the machine try to join a
    dead cluster. Another cluster's file (another port) is left alone."""
    from ray._common.utils import get_ray_address_file

    recorded = Path(get_ray_address_file(None))
    with contextlib.suppress(OSError):
        if recorded.read_text().strip().endswith(":" + address.rsplit(":", 1)[1]):
            recorded.unlink()
