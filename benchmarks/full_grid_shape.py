"""full_grid's orchestration at full shape, with a scripted trainable in place of training.

Runs ``capstudy launch``'s real driver, searcher, per-cell ASHA, recorder (tracking sink) and
MLflow SQLite store on a study with full_grid's grid (as shipped: 720 cells x 4 samples =
2880 trials; 50 epochs, 4 evaluation domains, per-class AP) on this machine's local Ray. Each
trial is :func:`capstudy.launch.scripted.scripted_trainable`: deterministic learning curves
per cell, so ASHA acts. Prints:

- results the driver took and results per second it sustained (wall);
- driver overhead per reported result: the driver process's CPU time per result, and the time
  spent inside the recorder's result callback (what a trial waits on in ``tune.report``);
- the MLflow store's size, and the time of ``capstudy analyze --find-threshold`` on it.

With ``--kills K`` it then runs the same study again, SIGKILLs the driver at K random points
and ``--resume``s each time, and prints whether the per-trial results equal the
uninterrupted run's, the duplicate and RUNNING runs, and the time ratio (at most 1.5x).

    python benchmarks/full_grid_shape.py                     # the full shape, one run
    python benchmarks/full_grid_shape.py --kills 3 --space tests/e2e/grid_shape.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from capstudy import keys

ROOT = Path(__file__).resolve().parents[1]
# Scripted trials do almost no work: a quarter CPU each lets 8 run at once on 2 cores, and
# keeps the driver, not the trials, the bottleneck being measured.
RESOURCES = "resources: {cpu: 0.25, gpu: 0}"


def scripted_study(space: Path, out: Path) -> Path:
    """A copy of ``space`` whose trials fit a CPU-only machine (resources line replaced)."""
    text = re.sub(r"(?m)^resources:.*$", RESOURCES, space.read_text())
    path = out / space.name
    path.write_text(text)
    return path


def drive(space: str, resume: bool) -> None:
    """The driver process: ``launch`` with the scripted trainable; prints its own figures."""
    import resource

    from rich.console import Console

    from capstudy.launch.driver import LaunchOptions, launch
    from capstudy.launch.recorder import StudyRecorder
    from capstudy.launch.scripted import scripted_trainable

    tic = time.perf_counter()
    outcome = launch(
        LaunchOptions(space=space, resume=resume, max_failures=0),
        Console(quiet=True),
        trainable_fn=scripted_trainable,
    )
    wall = time.perf_counter() - tic
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rec = StudyRecorder.last_stats
    print(
        "DRIVER "
        + json.dumps(
            {
                "status": outcome.status,
                "trials_done": outcome.trials_done,
                "wall_s": wall,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "results": rec.get("results", 0),
                "callback_s": rec.get("callback_s", 0.0),
                "sink_max_depth": rec.get("max_depth", 0),
                "sink_retries": rec.get("retries", 0),
            }
        ),
        flush=True,
    )


def _driver_cmd(space: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--drive", "--space", str(space)]
    return cmd + (["--resume"] if resume else [])


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "CAPSTUDY_HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _set_rungs(space: Path) -> None:
    """Tell scripted trials the study's ASHA rungs (they checkpoint there, like real ones)."""
    from capstudy.study import load_study
    from capstudy.study.plan import asha_rungs

    asha = load_study(str(space)).tune.asha
    rungs = asha_rungs(asha.grace, asha.reduction, asha.max_t)
    os.environ["SCRIPTED_RUNGS"] = ",".join(map(str, rungs))


def run_once(space: Path, home: Path, resume: bool = False) -> dict:
    """One driver run to its end; its printed figures."""
    proc = subprocess.run(
        _driver_cmd(space, resume), env=_env(home), capture_output=True, text=True
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("DRIVER ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(
            f"driver failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return json.loads(line[len("DRIVER ") :])


def _results_so_far(home: Path) -> int:
    """Results Ray has logged for the study so far (lines of every trial's result.json)."""
    total = 0
    for log in (home / "ray_results").glob("*/*/result.json"):
        with open(log, "rb") as fh:
            total += sum(1 for _ in fh)
    return total


def run_with_kills(space: Path, home: Path, kills: int, expected_s: float, seed: int) -> float:
    """Start, SIGKILL at ``kills`` random points (resuming after each), then finish; wall s.

    Each attempt first makes progress (new results logged), so a kill lands during training,
    not during Ray's start-up; then it runs a random further 5-15 % of the expected time (the
    three attempts together stay well inside one run, start-ups included).
    """
    rng = random.Random(seed)
    tic = time.perf_counter()
    for k in range(kills):
        before = _results_so_far(home)
        log_path = home.parent / f"driver-attempt-{k + 1}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                _driver_cmd(space, k > 0),
                env=_env(home),
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        ended = f"driver ended (rc {{}}) before kill {k + 1}; see {log_path}"
        try:
            while _results_so_far(home) <= before:
                if proc.poll() is not None:
                    tail = log_path.read_text()[-3000:]
                    raise SystemExit(ended.format(proc.returncode) + "\n" + tail)
                time.sleep(0.5)
            proc.wait(timeout=rng.uniform(0.05, 0.15) * expected_s)
            tail = log_path.read_text()[-3000:]
            raise SystemExit(ended.format(proc.returncode) + "\n" + tail)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # driver and the Ray it started: no clean-up
            proc.wait()
    run_once(space, home, resume=True)
    return time.perf_counter() - tic


def trial_results(home: Path, metric: str = "val/map50") -> dict[str, tuple]:
    """Per trial key: (status, last epoch, final value of ``metric``), from the store."""
    con = sqlite3.connect(home / "mlflow.db")
    try:
        rows = con.execute(
            """
            select t.value, r.status, lm.step, lm.value from runs r
            join tags k on k.run_uuid = r.run_uuid and k.key = ? and k.value = ?
            join tags t on t.run_uuid = r.run_uuid and t.key = ?
            left join latest_metrics lm on lm.run_uuid = r.run_uuid and lm.key = ?
            """,
            (keys.T_KIND, keys.KIND_TRIAL, keys.T_TRIAL_ID, metric),
        ).fetchall()
    finally:
        con.close()
    out: dict[str, tuple] = {}
    for key, status, step, value in rows:
        if key in out:
            raise AssertionError(f"duplicate runs for trial {key}")
        out[key] = (status, step, None if value is None else round(value, 9))
    return out


def analyze_seconds(home: Path, study: str) -> float:
    """Wall time of ``capstudy analyze --find-threshold`` on the study's store."""
    cmd = [
        sys.executable,
        "-m",
        "capstudy.cli.main",
        "analyze",
        "--study",
        study,
        "--find-threshold",
        "--out",
        str(home / "analysis"),
    ]
    tic = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(home), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"analyze failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - tic


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments, run, print the figures; returns them (the slow test reads them)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default=str(ROOT / "search_spaces" / "full_grid.yaml"))
    p.add_argument("--out", default=None, help="work folder (default: a new temporary one)")
    p.add_argument("--kills", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-analyze", action="store_true")
    p.add_argument(
        "--reuse-baseline",
        action="store_true",
        help="keep OUT/uninterrupted from an earlier run of the same study (kill runs only)",
    )
    p.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.drive:
        drive(args.space, args.resume)
        return {}
    import tempfile

    out = Path(args.out or tempfile.mkdtemp(prefix="capstudy-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    space = scripted_study(Path(args.space), out)
    _set_rungs(space)
    study = re.search(r"name:\s*([\w-]+)", space.read_text()).group(1)
    saved = out / "uninterrupted" / "driver.json"
    if args.reuse_baseline and saved.is_file():
        base = json.loads(saved.read_text())  # the same study's uninterrupted run, kept
    else:
        base = run_once(space, out / "uninterrupted")
        saved.write_text(json.dumps(base))
    store = (out / "uninterrupted" / "mlflow.db").stat().st_size
    results = trial_results(out / "uninterrupted")
    fig = {
        "trials": len(results),
        "results": base["results"],
        "wall_s": round(base["wall_s"], 1),
        "results_per_s": round(base["results"] / base["wall_s"], 1),
        "driver_cpu_ms_per_result": round(1000 * base["cpu_s"] / max(base["results"], 1), 2),
        "callback_ms_per_result": round(1000 * base["callback_s"] / max(base["results"], 1), 3),
        "sink_max_queue": base["sink_max_depth"],
        "store_mb": round(store / 2**20, 1),
    }
    if not args.no_analyze:
        fig["analyze_s"] = round(analyze_seconds(out / "uninterrupted", study), 1)
    if args.kills:
        shutil.rmtree(out / "killed", ignore_errors=True)
        killed_s = run_with_kills(space, out / "killed", args.kills, base["wall_s"], args.seed)
        again = trial_results(out / "killed")
        fig["killed_wall_s"] = round(killed_s, 1)
        fig["time_ratio"] = round(killed_s / base["wall_s"], 2)
        fig["results_equal"] = again == results
        differing = sorted(k for k in set(results) | set(again) if results.get(k) != again.get(k))
        fig["differing_trials"] = differing[:10]
        # (status, last epoch, value) uninterrupted -> interrupted, to tell what went wrong
        fig["differences"] = {k: [results.get(k), again.get(k)] for k in differing[:10]}
        fig["running_runs"] = sum(1 for s, *_ in again.values() if s == "RUNNING")
    for name, value in fig.items():
        print(f"{name:>26}: {value}")
    return fig


if __name__ == "__main__":
    main()
