"""Training-throughput benchmark: images/s of the engine's train step per variant.

Times the full step a trial runs (forward, float32 FCOS loss, backward, gradient clipping,
AdamW step) on random images with a few random boxes each, so the figure is the model's
cost alone; ``capstudy bench data`` measures the input pipeline separately.

On a GPU it can also pack several trials on the one GPU (separate processes, as Ray
places fractional-GPU trials) and report their aggregate images/s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from capstudy.config import TrialConfig
from capstudy.engine.device import precision_for, resolve_device
from capstudy.engine.model import build_model, detection_loss, variant_of
from capstudy.engine.optim import build_optimizer, optimizer_step

BENCH_VARIANTS = (
    ("efficientnet_b0", 0),
    ("efficientnet_b0", -4),
    ("efficientnet_b0", -7),
    ("mobilenetv3_small", 0),
    ("mobilenetv3_small", -6),
)
NUM_CLASSES = 3  # the synthetic detection benchmark's class count


@dataclass(frozen=True)
class BenchResult:
    """Throughput of one variant.

    Attributes:
        label: Paper label (``B-4``).
        images_per_s: Training images per second (timed steps only).
        step_s: Seconds per optimizer step.
        images: Images timed.
    """

    label: str
    images_per_s: float
    step_s: float
    images: int


def _batch(batch_size: int, size: int, device: torch.device, gen: torch.Generator):
    images = torch.rand(batch_size, 3, size, size, generator=gen).to(device)
    targets = []
    for _ in range(batch_size):
        xy = torch.rand(3, 2, generator=gen) * size * 0.6
        wh = 8 + torch.rand(3, 2, generator=gen) * size * 0.35
        boxes = torch.cat([xy, (xy + wh).clamp(max=size)], dim=1).to(device)
        labels = torch.randint(1, NUM_CLASSES + 1, (3,), generator=gen).to(device)
        targets.append({"boxes": boxes, "labels": labels})
    return images, targets


def train_throughput(
    config: TrialConfig, steps: int = 3, warmup: int = 1, seconds: float | None = None
) -> BenchResult:
    """Images/s of ``config``'s detection train step on its device.

    Args:
        config: Family, phi, image size, batch size, device, amp and threads are used.
        steps: Timed optimizer steps (at least this many when ``seconds`` is set).
        warmup: Untimed steps first (allocator, cuDNN autotuning, lazy init).
        seconds: Keep stepping until this much time has passed (packed GPU runs use it so
            all processes overlap for the whole measurement).
    """
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    precision = precision_for(device, config.amp)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    variant = variant_of(config)
    model = build_model(config, variant, NUM_CLASSES).to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model, config)
    images, targets = _batch(config.batch_size, config.input_size, device, torch.Generator())

    def step() -> None:
        loss = detection_loss(model, images, targets, precision)
        optimizer_step(loss, model, optimizer, precision.scaler)

    for _ in range(warmup):
        step()
    _sync(device)
    done, tic = 0, time.perf_counter()
    while done < steps or (seconds is not None and time.perf_counter() - tic < seconds):
        step()
        done += 1
    _sync(device)
    elapsed = time.perf_counter() - tic
    n = done * config.batch_size
    return BenchResult(variant.label, n / elapsed, elapsed / done, n)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _packed_worker(config_dict: dict, seconds: float, barrier, queue) -> None:
    config = TrialConfig.from_dict(config_dict)
    # Warm up (cuDNN autotuning) before the barrier, so all processes time the same window.
    train_throughput(config, steps=2, warmup=1)
    barrier.wait()
    queue.put(train_throughput(config, steps=1, warmup=0, seconds=seconds).images_per_s)


def packed_gpu_throughput(config: TrialConfig, trials: int = 4, seconds: float = 10.0) -> float:
    """Aggregate images/s of ``trials`` identical trials sharing one GPU (CUDA only).

    Each trial is its own process (spawned: CUDA cannot be forked), as Ray runs trials with
    ``gpu: 1/trials``; their timed windows start together at a barrier.

    Raises:
        RuntimeError: No CUDA device.
    """
    if not torch.cuda.is_available():
        raise RuntimeError("packed GPU throughput needs a CUDA GPU")
    ctx = torch.multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(trials), ctx.Queue()
    values = config.replace(device="cuda").to_dict()
    procs = [ctx.Process(target=_packed_worker, args=(values, seconds, barrier, queue))
             for _ in range(trials)]  # fmt: skip
    for p in procs:
        p.start()
    rates = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return float(sum(rates))
