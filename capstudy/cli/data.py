"""`capstudy data` commands: write the synthetic benchmark, check a dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

data_app = typer.Typer(
    help="Datasets: write the synthetic benchmark, check a dataset folder.",
    no_args_is_help=True,
)


@data_app.command("synth")
def synth(
    root: Annotated[
        Path | None,
        typer.Option(
            help="Folder that receives one folder per dataset "
            "(default: the data root, $CAPSTUDY_DATA or ~/.capstudy/data)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Generator seed: the same seed writes the same bytes.")
    ] = 0,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Write only these (synth_a, synth_b, synth_coco, synth_imagenet); repeatable."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace existing folders.")] = False,
    workers: Annotated[int, typer.Option(help="Processes (one dataset each).")] = 2,
    scale: Annotated[
        float, typer.Option(help="Multiply the image counts (e.g. 0.05 for smoke runs).")
    ] = 1.0,
) -> None:
    """Write the synthetic benchmark in the FLIR-aligned, LLVIP, COCO and ImageNet layouts."""
    import time

    from rich.table import Table

    from capstudy import paths
    from capstudy.data.synth import SPECS, generate_all
    from capstudy.util import console as make_console

    console = make_console()
    parent = (root or paths.data_root()).expanduser().resolve()
    names = tuple(only) if only else tuple(SPECS)
    start = time.perf_counter()
    with console.status(f"writing {', '.join(names)} under {parent} …"):
        times = generate_all(parent, seed, names, workers, force, scale)
    table = Table("dataset", "folder", "seconds")
    for name, seconds in times.items():
        table.add_row(name, str(parent / name), f"{seconds:.1f}" if seconds else "kept")
    console.print(table)
    console.print(f"done in {time.perf_counter() - start:.1f} s (seed {seed})")


@data_app.command("check")
def check(
    root: Annotated[Path, typer.Argument(help="Dataset folder.")],
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="flir_aligned, flir_v2, llvip, coco, imagefolder or domainnet (default: detect).",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Treat warnings (e.g. unmapped classes) as errors.")
    ] = False,
    decode: Annotated[
        bool, typer.Option(help="Fully decode every image (finds truncated files).")
    ] = True,
    max_messages: Annotated[
        int, typer.Option(help="Print at most this many per-file messages.")
    ] = 200,
) -> None:
    """Report missing, unreadable or unpaired files, bad boxes and unknown classes."""
    from rich.progress import Progress
    from rich.table import Table

    from capstudy.data.check import check_dataset
    from capstudy.util import console as make_console

    console = make_console(highlight=False)
    with Progress(transient=True, console=console) as bar:
        task = bar.add_task("decoding images", total=None)
        report = check_dataset(
            root,
            format,
            decode=decode,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    for p in report.problems[:max_messages]:
        style = "red" if p.severity == "error" else "yellow"
        console.print(f"[{style}]{p.severity}[/]: {p.path}: {p.message}", soft_wrap=True)
    if len(report.problems) > max_messages:
        console.print(f"… {len(report.problems) - max_messages} more message(s)")
    table = Table(
        "split", "modality", "images", "objects", "classes", title=f"{root} ({report.format})"
    )
    for part in report.parts:
        table.add_row(
            part.split, part.modality, str(part.images), str(part.objects), str(part.classes)
        )
    console.print(table)
    n_err, n_warn = len(report.errors), len(report.warnings)
    console.print(f"{n_err} error(s), {n_warn} warning(s)")
    if n_err or (strict and n_warn):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `data` command group to the app."""
    app.add_typer(data_app, name="data")
