"""`capstudy bench` commands: throughput benchmarks (`bench data`, `bench trial`)."""

from __future__ import annotations

from typing import Annotated

import typer

bench_app = typer.Typer(help="Throughput benchmarks.", no_args_is_help=True)


def _parse_size(text: str) -> tuple[int, int]:
    from capstudy.errors import CapstudyError

    try:
        w, _, h = text.lower().partition("x")
        return int(w), int(h or w)
    except ValueError as exc:
        raise CapstudyError(f"size {text!r} must look like 320x256 or 224") from exc


@bench_app.command("data")
def data(
    domain: Annotated[str, typer.Option(help="Detection domain to read.")] = "synth_a/rgb",
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT of the batches.")] = "320x256",
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    epochs: Annotated[int, typer.Option(help="Passes per timed round.")] = 1,
    rounds: Annotated[
        int, typer.Option(help="Interleaved rounds; each loader's median is reported.")
    ] = 3,
    workers: Annotated[int, typer.Option(help="DataLoader workers of the decoding baseline.")] = 2,
    device: Annotated[str, typer.Option(help="Where batches go (cpu, cuda).")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch intra-op threads for the cache loader.")] = 1,
) -> None:
    """Images/s from the memmap cache vs. decoding JPEGs every epoch, and the ratio."""
    from rich.table import Table

    from capstudy.data.bench import run_data_bench
    from capstudy.util import console as make_console

    console = make_console()
    with console.status("building the cache and timing loaders …"):
        results = run_data_bench(
            domain, _parse_size(size), batch_size, epochs, workers, rounds, device, threads
        )
    by_name = {r.name: r for r in results}
    title = f"{domain} at {size}, cache on {threads} thread(s), decoding on {workers} workers"
    table = Table("loader", "images/s", "images", "seconds", title=title)
    for r in results:
        table.add_row(r.name, f"{r.images_per_s:,.0f}", str(r.images), f"{r.seconds:.2f}")
    console.print(table)
    aug = by_name["cache + augment"].images_per_s
    plain = by_name["cache"].images_per_s
    dec_aug = by_name[f"decode JPEG + augment ({workers} workers)"].images_per_s
    dec = by_name[f"decode JPEG ({workers} workers)"].images_per_s
    console.print(f"ratio with augmentation (cache / decode): {aug / dec_aug:.1f}x")
    console.print(f"ratio without augmentation:               {plain / dec:.1f}x")
    console.print(f"cache + augment vs. plain decode:         {aug / dec:.1f}x")


@bench_app.command("trial")
def trial(
    size: Annotated[
        list[int] | None, typer.Option("--size", help="Square input size (repeatable; 256).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Images per step (the fine-tuning default).")
    ] = 16,
    images: Annotated[
        int, typer.Option(help="Training images per epoch (0: 1024 on a GPU, 48 on CPU).")
    ] = 0,
    variant: Annotated[
        list[str] | None,
        typer.Option("--variant", help="Only these labels (B0, B-4, B-7, S-0, S-6; repeatable)."),
    ] = None,
    packed: Annotated[
        list[int] | None,
        typer.Option(
            "--packed", help="On a GPU: trials sharing it (repeatable; 1 2 4 8; 0: none)."
        ),
    ] = None,
    seconds: Annotated[
        float, typer.Option(help="Timed window of the step and of packed trials.")
    ] = 3.0,
    threads: Annotated[int, typer.Option(help="Torch threads (0 = torch's default).")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    deterministic: Annotated[
        bool, typer.Option(help="Benchmark with deterministic: true.")
    ] = False,
    json_out: Annotated[
        str, typer.Option("--json", help="Also write the rows to this JSON file.")
    ] = "",
    baseline: Annotated[
        bool,
        typer.Option(
            help="Also time the old step (per-image FCOS loss and post-processing, unfused "
            "optimizer, no CUDA graphs) in the same run, with its ratio."
        ),
    ] = False,
    cuda_graphs: Annotated[
        bool, typer.Option(help="On a GPU: the trial key cuda_graphs (a captured step).")
    ] = False,
) -> None:
    """Whole trial epoch vs. model step alone per variant: images/s and pipeline efficiency."""
    from capstudy.engine.bench import BENCH_VARIANTS
    from capstudy.engine.device import resolve_device
    from capstudy.util import console as make_console

    size, variant = size or [256], variant or []
    packed = [1, 2, 4, 8] if packed is None else packed
    console = make_console()
    gpu = resolve_device(device).type == "cuda"
    chosen = _chosen_variants(BENCH_VARIANTS, variant)
    counts = [n for n in packed if n > 0] if gpu else []
    settings = dict(
        batch_size=batch_size,
        threads=threads,
        deterministic=deterministic,
        images=images or (1024 if gpu else 48),
        cuda_graphs=cuda_graphs,
    )
    timing = (seconds, baseline)
    rows = _bench_rows(console, chosen, size, device, settings, counts, timing, json_out)
    console.print(_trial_table(rows, counts, _device_name(device, threads), batch_size))
    for table in [_eval_speed_table(rows), *_breakdown_tables(rows)]:
        console.print(table)
    _save_for_cost(console, rows, chosen, size, batch_size, gpu, threads)


def _save_for_cost(console, rows, chosen, sizes, batch_size: int, gpu: bool, threads: int):
    """Cache the measured speeds for ``launch --dry-run``'s cost (capstudy.cost): training,
    a whole evaluation and the validation loss pass.

    The cost model counts images per device: one GPU, or one CPU core. A CPU run with more
    than one thread measures several cores at once, so only ``--threads 1`` runs are kept.
    """
    from capstudy.cost import save_bench

    if not gpu and threads != 1:
        console.print("(not cached for cost estimates: use --threads 1 for per-core figures)")
        return
    keys_in_order = [(family, phi, px) for px in sizes for family, phi in chosen]
    entries = [
        {
            "family": family,
            "phi": phi,
            "label": result.label,
            "image_size": px,
            "batch_size": batch_size,
            "train_images_per_s": result.train_images_per_s,
            "eval_images_per_s": result.eval_images_per_s,
            "forward_images_per_s": result.forward_images_per_s,
        }
        for (family, phi, px), (result, _packs) in zip(keys_in_order, rows)
    ]
    path = save_bench(entries, "cuda" if gpu else "cpu")
    console.print(f"Cached for `capstudy launch --dry-run` cost estimates: {path}")


def _chosen_variants(all_variants, labels: list[str]) -> list[tuple[str, int]]:
    from capstudy.errors import CapstudyError
    from capstudy.variants import make_variant

    by_label = {make_variant(f, p).label: (f, p) for f, p in all_variants}
    unknown = [label for label in labels if label not in by_label]
    if unknown:
        raise CapstudyError(f"--variant {unknown[0]!r} is not one of {sorted(by_label)}")
    return [by_label[label] for label in labels] if labels else list(all_variants)


def _bench_rows(console, variants, sizes, device, settings, counts, timing, json_out):
    """Time every (variant, size); rows are appended to ``json_out`` as they finish.

    ``timing`` is (seconds of each timed window, whether to time the old step too).
    """
    import contextlib

    from capstudy.engine.bench import PackedPool, bench_config, trial_throughput

    seconds, baseline = timing
    rows = []
    with PackedPool(max(counts)) if counts else contextlib.nullcontext() as pool:
        # Sizes outermost: a run cut short has every variant at the first size.
        for px in sizes:
            for family, phi in variants:
                config = bench_config(family, phi, px, device=device, **settings)
                with console.status(f"timing {family} phi {phi} at {px} px …"):
                    result = trial_throughput(config, step_seconds=seconds, baseline=baseline)
                    packs = {n: pool.throughput(config, n, seconds) for n in counts}
                rows.append((result, packs))
                console.print(_row_line(result, packs))
                if json_out:
                    _write_rows(json_out, rows)
    return rows


def _row_line(result, packs: dict[int, float]) -> str:
    speedup = result.step_speedup
    return (
        f"{result.label} {result.image_size} px: trial {result.trial_images_per_s:,.1f} img/s, "
        f"step {result.step_images_per_s:,.1f} img/s, efficiency {result.efficiency:.2f}"
        + (f", step vs old {speedup:.2f}x" if speedup else "")
        + "".join(f", {n} packed {v:,.1f}" for n, v in packs.items())
    )


def _write_rows(path: str, rows) -> None:
    """The rows so far as JSON (rewritten after every row: a killed run keeps its rows)."""
    import json
    from dataclasses import asdict

    payload = [
        {
            **asdict(r),
            "efficiency": r.efficiency,
            "step_speedup": r.step_speedup,
            "packed": {str(n): v for n, v in p.items()},
        }
        for r, p in rows
    ]
    with open(path, "w") as fh:
        json.dump({"rows": payload}, fh, indent=1)


def _device_name(device: str, threads: int) -> str:
    import torch

    from capstudy.engine.device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU, {threads or torch.get_num_threads()} thread(s)"


def _trial_table(rows, counts: list[int], device_name: str, batch_size: int):
    from rich.table import Table

    columns = ["variant", "px", "trial img/s", "train img/s", "step img/s", "efficiency"]
    columns += [f"{n} packed img/s" for n in counts]
    table = Table(
        *columns,
        title="trial epoch (train + val + shift eval) vs. model step",
        caption=f"batch {batch_size}, {device_name}; efficiency = trial / step",
    )
    for r, packs in rows:
        cells = [
            r.label,
            str(r.image_size),
            f"{r.trial_images_per_s:,.1f}",
            f"{r.train_images_per_s:,.1f}",
            f"{r.step_images_per_s:,.1f}",
            f"{r.efficiency:.2f}",
        ]
        cells += [f"{packs[n]:,.1f}" for n in counts]
        table.add_row(*cells)
    return table


def _eval_speed_table(rows):
    """The two forward-only passes a trial makes, at the speeds the dry-run's cost uses."""
    from rich.table import Table

    table = Table(
        "variant",
        "px",
        "eval img/s",
        "loss pass img/s",
        "ratio",
        title="evaluation vs. validation loss pass",
        caption="eval: forward, post-processing and COCOeval of every split; loss pass: "
        "forward and loss only (val_eval: rungs on epochs without mAP)",
    )
    for r, _ in rows:
        ratio = r.forward_images_per_s / r.eval_images_per_s if r.eval_images_per_s else 0.0
        table.add_row(
            r.label,
            str(r.image_size),
            f"{r.eval_images_per_s:,.1f}",
            f"{r.forward_images_per_s:,.1f}",
            f"{ratio:.1f}x",
        )
    return table


def _breakdown_tables(rows) -> list:
    """Step phases (ms per step) and evaluation phases (s per evaluation), old step beside."""
    from rich.table import Table

    from capstudy.engine.breakdown import EVAL_PHASES

    results = [r for r, _ in rows]
    step_phases = list(dict.fromkeys(k for r in results for k in r.step_ms))
    step = Table(
        "variant", "px", "path", *step_phases, "total", title="step breakdown (ms per step)"
    )
    evals = Table("variant", "px", "path", *EVAL_PHASES, "total", title="evaluation breakdown (s)")
    for r in results:
        paths = [("new", r.step_ms, r.eval_s)]
        if r.baseline:
            paths.append(("old", r.baseline["step_ms"], r.baseline["eval_s"]))
        for name, ms, secs in paths:
            cells = [f"{ms[k]:.1f}" if k in ms else "-" for k in step_phases]
            step.add_row(r.label, str(r.image_size), name, *cells, f"{sum(ms.values()):.1f}")
            cells = [f"{secs.get(k, 0.0):.3f}" for k in EVAL_PHASES]
            evals.add_row(r.label, str(r.image_size), name, *cells, f"{sum(secs.values()):.3f}")
    return [step, evals]


def register(app: typer.Typer) -> None:
    """Add the `bench` command group to the app."""
    app.add_typer(bench_app, name="bench")
