"""How long the study's answer takes: analyze and power on a full_grid-shaped study.

Simulates one full_grid-shaped results table (every trial of the shipped grid, 3 seeds, each
scored on the 4 evaluation domains) under the power analysis's default effect, writes it to a
file, and times:

* ``verdicts.analyze_table`` in this process with the CLI's default bootstrap (1000
  replicates, the full breakpoint grid): per-comparison fits and the shared threshold;
* ``capstudy analyze --from FILE --find-threshold --no-mlflow`` end to end (reading the file,
  figures, report, paper outputs);
* with ``--power``: ``capstudy power --space full_grid`` with its default replicates.

Targets (see the statistics docs): analyze within 60 s and power within 3 minutes on 2 cores.

Usage: ``python benchmarks/analysis_speed.py [--power] [--seeds 3]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _table(n_seeds: int):
    from capstudy.analysis.power_design import design_from_study
    from capstudy.analysis.power_sim import Effect, simulate_table
    from capstudy.study import load

    design = design_from_study(load("full_grid"))
    return simulate_table(design, Effect(), n_seeds, np.random.default_rng(0))


def _timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--power", action="store_true", help="also time capstudy power")
    args = parser.parse_args()
    from capstudy.analysis import tables, verdicts

    table = _table(args.seeds)
    print(f"table: {table['trial_id'].nunique()} trials x {table['eval_domain'].nunique()} domains")
    start = time.perf_counter()
    v = verdicts.analyze_table(tables.normalize(table, source="bench"), find_threshold=True)
    in_process = time.perf_counter() - start
    pooled = v.pooled.iloc[0]
    print(
        f"analyze_table (1000 replicates, {len(v.fits)} comparisons): {in_process:.1f} s; "
        f"shared verdict {pooled['verdict']} at {pooled['threshold']:,.0f}"
    )
    cli = str(Path(sys.executable).with_name("capstudy"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "full_grid.parquet"
        table.to_parquet(path)
        seconds, _ = _timed(
            [cli, "analyze", "--from", str(path), "--find-threshold", "--no-mlflow"]
            + ["--out", str(Path(tmp) / "out")]
        )
    print(f"capstudy analyze --from FILE --find-threshold --no-mlflow: {seconds:.1f} s")
    if args.power:
        seconds, out = _timed([cli, "power", "--space", "full_grid"])
        print(f"capstudy power --space full_grid (default replicates): {seconds:.1f} s")
        print(out)
    print(f"cores: {len(os.sched_getaffinity(0))}")


if __name__ == "__main__":
    main()
