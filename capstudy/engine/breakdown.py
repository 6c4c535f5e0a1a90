"""Where a training step and an evaluation spend their time (``capstudy bench trial``).

A step is timed in four phases: features forward (normalisation, trunk, FPN, head),
target assignment + loss, backward, optimizer (unscale, clip, update). An evaluation is
timed in five: forward, post-processing (threshold, top-k, NMS), transfer to the host,
COCO conversion and COCOeval. Device phases are timed with CUDA events on a GPU and the
wall clock on a CPU (:class:`capstudy.engine.timing.PhaseTimer`); the two host phases with
the wall clock. A captured step (``cuda_graphs``) is one phase, ``graphed step``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from capstudy.config import TrialConfig
from capstudy.engine.device import configure_backends, precision_for, resolve_device
from capstudy.engine.model import build_model, detection_outputs, loss_of_outputs, variant_of
from capstudy.engine.optim import apply_gradients, backward, build_optimizer
from capstudy.engine.step import GraphedStep, make_train_step
from capstudy.engine.timing import PhaseTimer

STEP_PHASES = ("forward", "loss", "backward", "optimizer")
EVAL_PHASES = ("forward", "postprocess", "transfer", "convert", "cocoeval")
GRAPHED = "graphed step"
NUM_CLASSES = 3  # the synthetic detection benchmark's class count


@dataclass(frozen=True)
class StepTiming:
    """The model step on one device-resident batch.

    Attributes:
        images_per_s: Images per second over the timed window (wall clock).
        phases_ms: Milliseconds per step of each phase (see the module docstring).
    """

    images_per_s: float
    phases_ms: dict[str, float]


def random_batch(batch_size: int, size: int, device: torch.device, gen: torch.Generator):
    """A batch of random images with three random boxes each (labels 1..3).

    The images are laid out as the loader's batches are, channels-last (a permuted view of
    the cache's NHWC rows): on a CPU a contiguous NCHW batch makes the step about 1.5x
    slower, which a step bench must not charge to the model.
    """
    images = torch.rand(batch_size, size, size, 3, generator=gen).permute(0, 3, 1, 2).to(device)
    targets = []
    for _ in range(batch_size):
        xy = torch.rand(3, 2, generator=gen) * size * 0.6
        wh = 8 + torch.rand(3, 2, generator=gen) * size * 0.35
        boxes = torch.cat([xy, (xy + wh).clamp(max=size)], dim=1).to(device)
        labels = torch.randint(1, NUM_CLASSES + 1, (3,), generator=gen).to(device)
        targets.append({"boxes": boxes, "labels": labels})
    return images, targets


def step_timing(config: TrialConfig, seconds: float = 2.0, warmup: int = 3) -> StepTiming:
    """Images/s and phase breakdown of the detection train step alone.

    Args:
        config: Family, phi, image size, batch size, device, amp, threads, determinism, and
            the step's own keys (``batched_fcos``, ``fused_optimizer``, ``cuda_graphs``).
        seconds: Keep stepping (at least two steps) until this much time has passed.
        warmup: Untimed steps first (allocator, cuDNN autotuning, graph capture).
    """
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    precision = precision_for(device, config.amp)
    configure_backends(device, config.deterministic)
    torch.manual_seed(0)
    model = build_model(config, variant_of(config), NUM_CLASSES).to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model, config)
    images, targets = random_batch(config.batch_size, config.input_size, device, torch.Generator())
    graphed = make_train_step(model, optimizer, precision, config, slots=3)

    def step(timer: PhaseTimer) -> None:
        timer.start()
        if isinstance(graphed, GraphedStep):
            graphed(images, targets)
            timer.mark(GRAPHED)
            return
        optimizer.zero_grad(set_to_none=True)
        outputs = detection_outputs(model, images, targets, precision)
        timer.mark("forward")
        loss = loss_of_outputs(model, outputs, config.batched_fcos)
        timer.mark("loss")
        backward(loss, precision.scaler)
        timer.mark("backward")
        apply_gradients(model, optimizer, precision.scaler)
        timer.mark("optimizer")

    for _ in range(warmup):
        step(PhaseTimer(device))
    _sync(device)
    timer, done, tic = PhaseTimer(device), 0, time.perf_counter()
    while done < 2 or time.perf_counter() - tic < seconds:
        step(timer)
        done += 1
    _sync(device)
    rate = done * config.batch_size / (time.perf_counter() - tic)
    return StepTiming(rate, {k: 1000 * v / done for k, v in timer.totals().items()})


def eval_breakdown(model, splits: dict, config: TrialConfig) -> dict[str, float]:
    """Seconds of each evaluation phase for one evaluation of ``splits`` (name -> split).

    The splits are scored one after the other here (a trial overlaps scoring of one split
    with inference of the next), so the phases add up to more than a trial's evaluation.
    """
    from capstudy.engine.evaluate import predict_split, score_split

    device = resolve_device(config.device)
    precision = precision_for(device, config.amp)
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    timer, timings = PhaseTimer(device), {}
    for split in splits.values():
        predictions = predict_split(
            model, split, config.task, precision, config.batch_size, config.batched_fcos, timer
        )
        score_split(predictions, split, config.task, timings=timings)
    for phase, seconds in timings.items():
        timer.add(phase, seconds)
    totals = timer.totals()
    return {phase: totals.get(phase, 0.0) for phase in EVAL_PHASES}


@dataclass(frozen=True)
class EvalRates:
    """Images/s of the two forward-only passes a trial makes, as a trial makes them.

    Attributes:
        eval_images_per_s: A whole evaluation of every split (forward, post-processing,
            transfer, COCOeval overlapped with the next split's inference).
        forward_images_per_s: The validation loss pass of ``val_eval: rungs`` (forward and
            loss only), over the same splits.
    """

    eval_images_per_s: float
    forward_images_per_s: float


def eval_rates(model, splits: dict, config: TrialConfig) -> EvalRates:
    """Time one evaluation and one loss pass of ``splits`` (what ``capstudy.cost`` prices)."""
    from capstudy.engine.evaluate import evaluate_splits, split_loss

    device = resolve_device(config.device)
    precision = precision_for(device, config.amp)
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    images = sum(len(split) for split in splits.values())
    args = (config.task, precision, config.batch_size)
    _sync(device)
    tic = time.perf_counter()
    evaluate_splits(model, splits, *args, batched=config.batched_fcos)
    _sync(device)
    evaluated = time.perf_counter() - tic
    tic = time.perf_counter()
    for split in splits.values():
        split_loss(model, split, *args, config.batched_fcos)
    _sync(device)
    return EvalRates(images / evaluated, images / (time.perf_counter() - tic))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
