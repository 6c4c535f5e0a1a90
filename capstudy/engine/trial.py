"""One trial: build, initialise, train, evaluate after every epoch, checkpoint, report.

No Ray and no MLflow here: results leave through the ``report`` callback, so the same
function runs under Ray Tune, from ``capstudy train`` and in the tests.

The training step never waits for the device: batches come from a prefetching loader, the
running loss stays a device tensor, and the host reads it once per epoch. That read is also
the divergence check: a non-finite epoch loss is reported once (``train/diverged`` = 1, the
epoch's metrics NaN) and the trial ends normally, since rerunning a diverged configuration
would only diverge again.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from capstudy import keys
from capstudy.capacity import variant_capacity
from capstudy.config import INIT_CHOICES, TrialConfig
from capstudy.engine.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from capstudy.engine.datasets import TrialData, open_trial_data
from capstudy.engine.device import (
    Precision,
    claim_gpu,
    configure_backends,
    precision_for,
    release_gpu,
    resolve_device,
    set_threads,
)
from capstudy.engine.evaluate import evaluate_splits, split_loss
from capstudy.engine.model import build_model, variant_of
from capstudy.engine.optim import build_optimizer, build_scheduler
from capstudy.engine.progress import StepProgress
from capstudy.engine.step import Step, make_train_step
from capstudy.engine.weights import load_init
from capstudy.errors import CapstudyError

Report = Callable[[dict[str, float], Path | None], None]
# Training batches prepared ahead by the loader's thread. On a GPU it hides the gather, copy
# and augmentation behind the step. On a CPU the thread and the step share the trial's cores,
# so there is nothing to hide behind: batches are made on the training thread.
PREFETCH_GPU = 2


@dataclass
class TrialResult:
    """What a finished trial hands back.

    Attributes:
        metrics: The last epoch's metrics (same keys as each report).
        history: Every epoch's metrics, in order (epochs before a resume included).
        model: The trained model, on the CPU, in eval mode.
        init_meta: Meta of the loaded initialization weights (None for random).
        diverged: Training stopped early on a non-finite loss.
    """

    metrics: dict[str, float]
    history: list[dict[str, float]]
    model: nn.Module
    init_meta: dict[str, Any] | None = field(default=None)
    diverged: bool = False


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_trial(
    config: TrialConfig,
    report: Report | None = None,
    *,
    init_path: Path | None = None,
    checkpoint_dir: Path | None = None,
    resume_from: Path | None = None,
    progress: bool = False,
    gpu_share: float | None = None,
) -> TrialResult:
    """Train and evaluate one trial.

    Args:
        config: The frozen trial config.
        report: Called after every epoch with ``(metrics, folder)``: ``folder`` is
            ``checkpoint_dir`` when this epoch wrote a checkpoint (before the call, so a
            scheduler that stops the trial keeps that epoch), else None.
        init_path: Weights for ``init`` imagenet/imagenet_coco (the caller resolves the
            registry, see :func:`capstudy.pretrain.resolve_init`). When ``config.init`` is a
            path and this is None, that path is used.
        checkpoint_dir: Where ``checkpoint.pt`` is written after the epochs
            :meth:`TrialConfig.checkpoint_due` names (None: never).
        resume_from: A checkpoint file or folder of this same config; training continues
            after its last epoch with the same results as an uninterrupted run (on a GPU
            with ``deterministic: true``).
        progress: Show a progress bar (for the CLI).
        gpu_share: This trial's fraction of its GPU (packed trials): caps its CUDA memory.

    Returns:
        The final metrics, the per-epoch history and the trained model.

    Raises:
        CapstudyError: Bad domains, missing or mismatching weights, a foreign checkpoint.
    """
    set_threads(config.threads)
    device = resolve_device(config.device)
    precision = precision_for(device, config.amp)
    configure_backends(device, config.deterministic)
    claim_gpu(device, gpu_share)
    seed_everything(config.seed)
    data = open_trial_data(config)
    variant = variant_of(config)
    model = build_model(config, variant, data.num_classes)
    init_meta = _initialize(model, config, init_path)
    with torch.random.fork_rng(devices=[]):  # capacity builds a trunk: keep the RNG stream
        capacity = variant_capacity(variant, model, config.input_size)
    static = {
        keys.M_BACKBONE_PARAMS: float(capacity.backbone_params),
        keys.M_DETECTOR_PARAMS: float(capacity.detector_params),
        keys.M_MACS: float(capacity.macs),
    }
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    loader = train_loader(data.train, config, device)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, len(loader))
    start, history = 0, []
    if resume_from is not None:
        state = load_checkpoint(resume_from, config.config_hash())
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        precision.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start, history = int(state["epoch"]), list(state["history"])
    slots = max((len(b) for b in data.train.boxes), default=1) if config.task == "detection" else 0
    step = make_train_step(model, optimizer, precision, config, slots)
    parts = _Parts(model, loader, optimizer, scheduler, precision, data, static, step)
    try:
        diverged = _epochs(parts, config, start, history, report, checkpoint_dir, progress)
    finally:
        model.to("cpu", memory_format=torch.contiguous_format).eval()
        release_gpu(device)
    return TrialResult(dict(history[-1]) if history else {}, history, model, init_meta, diverged)


def train_loader(split, config: TrialConfig, device: torch.device):
    """The trial's training BatchLoader (shuffled, augmented, prefetching on a GPU)."""
    from capstudy.data import BatchLoader

    return BatchLoader(
        split,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        device=device,
        augment=config.augment,
        prefetch=PREFETCH_GPU if device.type == "cuda" else 0,
    )


@dataclass
class _Parts:
    """What the epoch loop works with (one bundle instead of nine arguments)."""

    model: nn.Module
    loader: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    precision: Precision
    data: TrialData
    static: dict[str, float]
    step: Step


def _epochs(parts: _Parts, config, start, history, report, checkpoint_dir, progress) -> bool:
    """Train epochs ``start..epochs-1``; return True when training diverged."""
    bar = StepProgress(progress, total=(config.epochs - start) * len(parts.loader))
    with bar:
        for epoch in range(start, config.epochs):
            parts.loader.set_epoch(epoch)
            tic = time.perf_counter()
            loss, images, train_s = _train_epoch(parts, config, bar, epoch)
            metrics = {keys.M_EPOCH: float(epoch + 1), keys.M_TRAIN_LOSS: loss, **parts.static}
            diverged = not math.isfinite(loss)
            if diverged:
                metrics.update(_diverged_metrics(config, parts.data))
            else:
                shifts = config.shift_eval_due(epoch + 1)
                val_map = config.val_map_due(epoch + 1)
                metrics.update(_evaluate_all(parts, config, shifts, val_map))
            metrics[keys.M_IMAGES_PER_S] = images / max(train_s, 1e-9)
            metrics[keys.M_EPOCH_TIME] = time.perf_counter() - tic
            history.append(metrics)
            written = None
            if checkpoint_dir is not None and not diverged and config.checkpoint_due(epoch + 1):
                save_checkpoint(checkpoint_dir, _payload(parts, config, epoch + 1, history))
                written = checkpoint_dir
            if report is not None:
                report(dict(metrics), written)
            if diverged:
                return True
    return False


def _initialize(model: nn.Module, config: TrialConfig, init_path: Path | None) -> dict | None:
    """Load the config's initialization into ``model``; return the weights' meta."""
    if config.init == "random":
        if init_path is not None:
            raise CapstudyError(f"init=random but init weights {init_path} were given")
        return None
    if init_path is None:
        if config.init in INIT_CHOICES:
            raise CapstudyError(
                f"init={config.init!r} needs its weights file: resolve it with "
                "capstudy.pretrain.resolve_init(config) and pass init_path"
            )
        init_path = Path(config.init).expanduser()
    return load_init(model, Path(init_path))


def _train_epoch(parts: _Parts, config: TrialConfig, bar, epoch: int):
    """One pass over the train split; returns (mean loss, images, seconds).

    The loss is summed on the device and read once at the end: a per-step ``float(loss)``
    would make the host wait for every step before preparing the next.
    """
    model, precision = parts.model, parts.precision
    model.train()
    total = torch.zeros((), device=precision.device)
    seen = 0
    tic = time.perf_counter()
    for images, targets in parts.loader:
        loss = parts.step(images, targets)
        parts.scheduler.step()
        total += loss * len(images)
        seen += len(images)
        bar.advance(f"epoch {epoch + 1}/{config.epochs}")
    mean = float(total) / max(seen, 1)  # the epoch's one wait for the device
    return mean, seen, time.perf_counter() - tic


def _main_metrics(config: TrialConfig) -> tuple[str, ...]:
    return keys.DETECTION_METRICS if config.task == "detection" else keys.CLASSIFICATION_METRICS


# The held-out validation subset's name among the evaluated splits (no domain is named so:
# domains are ``dataset/modality``).
_VAL = "val"


def _evaluate_all(
    parts: _Parts, config: TrialConfig, shifts: bool = True, val_map: bool = True
) -> dict[str, float]:
    """``val/<m>`` on the carved validation subset, ``eval/<domain>/<m>`` on published splits.

    ``val/*`` (what ASHA and selection read) when ``val_map`` (every epoch, or with
    ``val_eval: rungs`` at the rungs and the end, where ASHA decides; NaN on the others,
    which ASHA skips); with ``val_eval: rungs`` also ``val/loss`` every epoch, from the mAP's
    own forward pass where both are due, else from a forward and loss alone. The published
    evaluation splits, which are only reported, when ``shifts``.
    """
    data = parts.data
    splits = {**({_VAL: data.val} if val_map else {}), **(data.evals if shifts else {})}
    class_sets = {_VAL: data.class_sets.get(config.train_domain), **data.class_sets}
    results = evaluate_splits(
        parts.model,
        splits,
        config.task,
        parts.precision,
        config.batch_size,
        class_sets,
        batched=config.batched_fcos,
        loss_of=_VAL if config.val_eval == "rungs" else None,
    )
    val = results.pop(_VAL, {})
    out = {keys.val_metric(name): val.get(name, math.nan) for name in _main_metrics(config)}
    if config.val_eval == "rungs":
        out[keys.M_VAL_LOSS] = val["loss"] if val_map else _loss_pass(parts, config)
    for domain, values in results.items():
        out.update({keys.eval_metric(domain, name): v for name, v in values.items()})
    return out


def _loss_pass(parts: _Parts, config: TrialConfig) -> float:
    """``val/loss`` on an epoch without val/* mAP: forward and loss only."""
    return split_loss(
        parts.model,
        parts.data.val,
        config.task,
        parts.precision,
        config.batch_size,
        config.batched_fcos,
    )


def _diverged_metrics(config: TrialConfig, data: TrialData) -> dict[str, float]:
    """NaN for every main metric (undefined, not zero) and the divergence flag."""
    out = {keys.M_DIVERGED: 1.0}
    for name in _main_metrics(config):
        out[keys.val_metric(name)] = math.nan
        out.update({keys.eval_metric(domain, name): math.nan for domain in data.evals})
    return out


def _payload(parts: _Parts, config: TrialConfig, epoch: int, history: list) -> dict:
    return {
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.precision.scaler.state_dict(),
        "epoch": epoch,
        "history": history,
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
    }
