"""`capstudy bench` commands: throughput benchmarks (`bench data`, `bench train`)."""

from __future__ import annotations

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
    domain: str = typer.Option("synth_a/rgb", help="Detection domain to read."),
    size: str = typer.Option("320x256", help="WIDTHxHEIGHT of the batches."),
    batch_size: int = typer.Option(32, help="Images per batch."),
    epochs: int = typer.Option(1, help="Passes per timed round."),
    rounds: int = typer.Option(3, help="Interleaved rounds; each loader's median is reported."),
    workers: int = typer.Option(2, help="DataLoader workers of the decoding baseline."),
    device: str = typer.Option("cpu", help="Where batches go (cpu, cuda)."),
    threads: int = typer.Option(1, help="torch intra-op threads for the cache loader."),
) -> None:
    """Images/s from the memmap cache vs. decoding JPEGs every epoch, and the ratio."""
    from rich.console import Console
    from rich.table import Table

    from capstudy.data.bench import run_data_bench

    console = Console()
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


@bench_app.command("train")
def train(
    image_size: int = typer.Option(256, help="Square input size (the fine-tuning default)."),
    batch_size: int = typer.Option(16, help="Images per step (the fine-tuning default)."),
    steps: int = typer.Option(3, help="Timed steps per variant (after one warm-up step)."),
    threads: int = typer.Option(0, help="Torch threads (0 = torch's default)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    packed: int = typer.Option(4, help="On a GPU: also time this many trials sharing it."),
    seconds: float = typer.Option(10.0, help="Timed window of each packed trial."),
) -> None:
    """Training images/s of B0, B-4, B-7, S-0, S-6 (detection step, random data)."""
    from capstudy.cli.bench_train import run_train_bench

    run_train_bench(image_size, batch_size, steps, threads, device, packed, seconds)


def register(app: typer.Typer) -> None:
    """Add the `bench` command group to the app."""
    app.add_typer(bench_app, name="bench")
