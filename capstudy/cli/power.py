"""``capstudy power``: will this grid answer the question? A power analysis before launch.

A command of its own rather than ``capstudy launch --power``: it needs no Ray, no tracking
store and no data, runs in seconds to a minute, and keeps launch's options about launching.
The statistics live in :mod:`capstudy.analysis.power`; this module parses options, resolves
the study's capacities (free-scale variants are measured by building their trunk), prints.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from capstudy.cli.options import TrackingUri
from capstudy.errors import CapstudyError


def _design(space: str):
    from capstudy.analysis.power_design import design_from_study
    from capstudy.capacity import free_backbone_params
    from capstudy.study import load

    spec = load(space)
    return spec, design_from_study(spec, count=free_backbone_params)


def _pilot_table(from_study: str | None, from_file: Path | None, tracking_uri: str | None):
    """The pilot's tidy table and its name, or ``(None, "")``."""
    if from_study and from_file:
        raise CapstudyError("--from-study and --from: give one pilot, not both")
    if from_file is not None:
        from capstudy.analysis import tables

        return tables.read_table(from_file), f"file {from_file}"
    if from_study:
        from capstudy.analysis.results import load_from_mlflow
        from capstudy.paths import default_tracking_uri

        loaded = load_from_mlflow(tracking_uri or default_tracking_uri(), from_study)
        return loaded.table, f"study {loaded.study}"
    return None, ""


def _parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(sorted({int(s) for s in text.split(",") if s.strip()}))
    except ValueError:
        raise CapstudyError(f"--seeds {text!r}: give whole numbers, e.g. 2,3,5,8") from None
    if not seeds or seeds[0] < 2:
        raise CapstudyError(f"--seeds {text!r}: every count must be at least 2")
    return seeds


def _trial_hours(spec) -> tuple[tuple[float, float], str]:
    """((trial device-hours with every seed, pretraining device-hours), unit) by the dry
    run's own estimate."""
    from capstudy.cost import estimate, load_bench
    from capstudy.study.plan import plan

    gpu = spec.resources.gpu > 0
    est = estimate(plan(spec), load_bench("cuda" if gpu else "cpu"))
    unit = "GPU-hours" if gpu else "core-hours"
    return ((est.train_s + est.eval_s) / 3600, est.pretrain_s / 3600), unit


def _sequential_lines(spec, design, effect, replicates: int, workers: int, seed: int) -> list:
    """The sequential design against fixed designs at its looks, on the same simulations."""
    from capstudy.analysis import power_seq

    seq = spec.sequential
    bounds, _ = power_seq.null_boundaries(design, effect, seq, workers=workers, base_seed=seed)
    reps = power_seq.simulate_looks(
        design,
        effect,
        seq.looks,
        ("kink", "null", "smooth"),
        replicates,
        workers=workers,
        base_seed=seed,
        bounds=bounds,
    )
    table = power_seq.compare_designs(power_seq.outcomes(reps, bounds, design, effect), bounds)
    cost, unit = _trial_hours(spec)
    return [
        f"Boundaries from {seq.simulations} simulated no-threshold studies of this grid; then "
        f"{replicates} studies per world, each analysed at every look as the launch does "
        "(fast mode); a fixed design with n seeds is the same studies' analysis at n seeds.",
        *power_seq.render_comparison(table, bounds, cost, unit),
        "threshold: share of studies whose answer is a threshold (power where there is a "
        "kink, false thresholds elsewhere); E[seeds]: seeds per cell the design runs on "
        f"average; {unit}: by the dry run's cost estimate (pretraining included).",
    ]


def register(app: typer.Typer) -> None:
    """Add ``capstudy power``."""

    @app.command("power")
    def power_cmd(
        space: Annotated[
            str, typer.Option("--space", help="Study name in search_spaces/ or a YAML path.")
        ],
        seeds: Annotated[
            str | None,
            typer.Option(
                help="Seed counts to simulate [2,3,5,8]; a sequential study compares its "
                "looks with fixed designs instead, unless this is given."
            ),
        ] = None,
        replicates: Annotated[
            int, typer.Option(help="Simulated studies per seed count and scenario.")
        ] = 30,
        seed_sd: Annotated[
            float | None, typer.Option(help="SD across seeds of the selected metric [0.02].")
        ] = None,
        slope: Annotated[
            float | None, typer.Option(help="Gain per tenfold capacity above the kink [0.075].")
        ] = None,
        kink: Annotated[
            float | None, typer.Option(help="Backbone parameters where gains start [1e5].")
        ] = None,
        plateau: Annotated[float | None, typer.Option(help="Gain below the kink [0].")] = None,
        hpo_spread: Annotated[
            float | None, typer.Option(help="HPO quality spread / seed noise [1].")
        ] = None,
        val_noise: Annotated[
            float | None, typer.Option(help="Validation-subset noise / seed noise [0.5].")
        ] = None,
        from_study: Annotated[
            str | None, typer.Option(help="Measure seed SD and gains on this finished study.")
        ] = None,
        from_file: Annotated[
            Path | None, typer.Option("--from", help="...or on this tidy table (.csv/.parquet).")
        ] = None,
        tracking_uri: TrackingUri = None,
        workers: Annotated[int, typer.Option(help="Processes.")] = 2,
        seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 0,
        out: Annotated[
            Path | None, typer.Option(help="Also write the per-seed-count table to this CSV.")
        ] = None,
    ) -> None:
        """Simulate the study's own analysis on its own grid under an assumed effect.

        Prints, per seed count, for the shared threshold (the study's answer) and per
        comparison: how often the threshold is found, how often its CI covers the kink, and
        the false-threshold rate when the gain is a line or a smooth power law. Defaults are
        stated; each can be set, or measured on a pilot.
        """
        # One BLAS thread per process: the fits multiply small matrices, where threads only
        # contend with the worker processes (set before numpy is first imported).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        from capstudy.analysis import power
        from capstudy.analysis.power_pilot import effect_from_pilot
        from capstudy.analysis.power_sim import Effect

        counts = _parse_seeds(seeds or "2,3,5,8")
        if replicates < 2:
            raise CapstudyError(f"--replicates {replicates}: use at least 2 (10+ for a table)")
        given = {
            k: v
            for k, v in dict(
                seed_sd=seed_sd,
                slope=slope,
                kink=kink,
                plateau=plateau,
                hpo_spread=hpo_spread,
                val_noise=val_noise,
            ).items()
            if v is not None
        }
        opt = {k: "--" + k.replace("_", "-") for k in given}
        try:
            effect = Effect(**given, sources=opt)
        except ValueError as exc:
            raise CapstudyError(f"{exc}; see capstudy power --help") from None
        start = time.perf_counter()
        spec, design = _design(space)
        pilot, name = _pilot_table(from_study, from_file, tracking_uri)
        if pilot is not None:
            effect = effect_from_pilot(pilot, effect, name, set(given))
        if spec.sequential is not None and seeds is None:
            lines = [
                f"Power of sequential study {spec.name} ({spec.source})",
                *power.design_lines(design, effect),
                "Assumed effect (same curve for every pretrained init and domain):",
                *power.effect_lines(effect),
                *_sequential_lines(spec, design, effect, replicates, workers, seed),
                f"({time.perf_counter() - start:.0f} s)",
            ]
            typer.echo("\n".join(lines))
            return
        reps = power.simulate_power(
            design, effect, counts, replicates, workers=workers, base_seed=seed
        )
        summary = power.summarize_power(reps)
        lines = [
            f"Power of study {spec.name} ({spec.source})",
            *power.design_lines(design, effect),
            "Assumed effect (same curve for every pretrained init and domain):",
            *power.effect_lines(effect),
            f"Each row: {replicates} simulated studies with a kink, {replicates} whose gain is "
            f"a line and {replicates} whose gain is a power law (exponents "
            f"{', '.join(map(str, power.SMOOTH_EXPONENTS))}), both with the kink's total "
            "rise; each analysed as `capstudy analyze --find-threshold` does (fast mode).",
            *power.render_table(summary, design),
            "shared: the study's answer, one shared-threshold test per study (share of "
            "studies); per comparison: share of comparisons. found: threshold in the true "
            "direction where there is a kink; covers: found CIs containing the kink; false: "
            "threshold verdicts when the gain is a line; false(sm): when it is a smooth "
            f"power law. ({time.perf_counter() - start:.0f} s)",
        ]
        typer.echo("\n".join(lines))
        if out is not None:
            summary.to_csv(out, index=False)
            typer.echo(f"Wrote {out}")
