"""The table of ``capstudy bench train`` (kept apart from the data benchmark's module)."""

from __future__ import annotations


def run_train_bench(
    image_size: int, batch_size: int, steps: int, threads: int, device: str, packed: int,
    seconds: float,
) -> None:  # fmt: skip
    """Print training images/s per benchmark variant (and packed-GPU aggregates on CUDA)."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from capstudy.config import TrialConfig
    from capstudy.engine.bench import BENCH_VARIANTS, packed_gpu_throughput, train_throughput
    from capstudy.engine.device import resolve_device

    console = Console()
    dev = resolve_device(device)
    gpu = dev.type == "cuda"
    name = torch.cuda.get_device_name(dev) if gpu else f"CPU, {torch.get_num_threads()} threads"
    if threads > 0 and not gpu:
        name = f"CPU, {threads} threads"
    columns = ["variant", "images/s", "s/step"] + ([f"{packed} packed, images/s"] if gpu else [])
    table = Table(
        *columns, title="training images/s", caption=f"{image_size} px, batch {batch_size}, {name}"
    )
    for family, phi in BENCH_VARIANTS:
        config = TrialConfig.from_dict(
            dict(family=family, phi=phi, image_size=image_size, batch_size=batch_size,
                 device=str(dev), threads=threads)
        )  # fmt: skip
        with console.status(f"timing {family} phi {phi} …"):
            result = train_throughput(config, steps=steps)
            row = [result.label, f"{result.images_per_s:,.1f}", f"{result.step_s:.3f}"]
            if gpu and packed > 1:
                row.append(f"{packed_gpu_throughput(config, packed, seconds):,.1f}")
        table.add_row(*row)
    console.print(table)
