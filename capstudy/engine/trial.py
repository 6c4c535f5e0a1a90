"""One trial: build, initialise, train, evaluate after every epoch, checkpoint, report.

No Ray and no MLflow here: results leave through the ``report`` callback, so the same
function runs under Ray Tune, from ``capstudy train`` and in the tests.
"""

from __future__ import annotations

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
from capstudy.engine.device import Precision, precision_for, resolve_device, set_threads
from capstudy.engine.evaluate import evaluate_split
from capstudy.engine.model import build_model, classification_loss, detection_loss, variant_of
from capstudy.engine.optim import build_optimizer, build_scheduler, optimizer_step
from capstudy.engine.progress import StepProgress
from capstudy.engine.weights import load_init
from capstudy.errors import CapstudyError

Report = Callable[[dict[str, float], Path | None], None]


@dataclass
class TrialResult:
    """What a finished trial hands back.

    Attributes:
        metrics: The last epoch's metrics (same keys as each report).
        history: Every epoch's metrics, in order (epochs before a resume included).
        model: The trained model, on the CPU, in eval mode.
        init_meta: Meta of the loaded initialization weights (None for random).
    """

    metrics: dict[str, float]
    history: list[dict[str, float]]
    model: nn.Module
    init_meta: dict[str, Any] | None = field(default=None)


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
            after its last epoch with the same results as an uninterrupted run.
        progress: Show a progress bar (for the CLI).

    Returns:
        The final metrics, the per-epoch history and the trained model.

    Raises:
        CapstudyError: Bad domains, missing or mismatching weights, a foreign checkpoint.
    """
    set_threads(config.threads)
    device = resolve_device(config.device)
    precision = precision_for(device, config.amp)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: autotuning pays off
    seed_everything(config.seed)
    data = open_trial_data(config)
    variant = variant_of(config)
    model = build_model(config, variant, data.num_classes)
    init_meta = _initialize(model, config, init_path)
    with torch.random.fork_rng(devices=[]):  # capacity builds a trunk: keep the RNG stream
        capacity = variant_capacity(variant, model, config.image_size)
    static = {
        keys.M_BACKBONE_PARAMS: float(capacity.backbone_params),
        keys.M_DETECTOR_PARAMS: float(capacity.detector_params),
        keys.M_MACS: float(capacity.macs),
    }
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)

    from capstudy.data import BatchLoader

    loader = BatchLoader(
        data.train, config.batch_size, shuffle=True, seed=config.seed, device=device,
        augment=config.augment,
    )  # fmt: skip
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

    bar = StepProgress(progress, total=(config.epochs - start) * len(loader))
    with bar:
        for epoch in range(start, config.epochs):
            loader.set_epoch(epoch)
            tic = time.perf_counter()
            loss, images, train_s = _train_epoch(model, loader, optimizer, scheduler, precision,
                                                 config, bar, epoch)  # fmt: skip
            metrics = {keys.M_EPOCH: float(epoch + 1), keys.M_TRAIN_LOSS: loss, **static}
            shifts = config.shift_eval_due(epoch + 1)
            metrics.update(_evaluate_all(model, data, config, precision, shifts))
            metrics[keys.M_IMAGES_PER_S] = images / max(train_s, 1e-9)
            metrics[keys.M_EPOCH_TIME] = time.perf_counter() - tic
            history.append(metrics)
            written = None
            if checkpoint_dir is not None and config.checkpoint_due(epoch + 1):
                save_checkpoint(checkpoint_dir, _payload(model, optimizer, scheduler, precision,
                                                         config, epoch + 1, history))  # fmt: skip
                written = checkpoint_dir
            if report is not None:
                report(dict(metrics), written)
    model.to("cpu", memory_format=torch.contiguous_format).eval()
    return TrialResult(dict(history[-1]) if history else {}, history, model, init_meta)


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


def _train_epoch(model, loader, optimizer, scheduler, precision: Precision, config, bar, epoch):
    """One pass over the train split; returns (mean loss, images, seconds)."""
    model.train()
    total = torch.zeros((), device=precision.device)
    seen = 0
    tic = time.perf_counter()
    for images, targets in loader:
        if config.task == "detection":
            loss = detection_loss(model, images, targets, precision)
        else:
            loss = classification_loss(model, images, targets, precision, config.label_smoothing)
        optimizer_step(loss, model, optimizer, precision.scaler)
        scheduler.step()
        total += loss.detach() * len(images)
        seen += len(images)
        bar.advance(f"epoch {epoch + 1}/{config.epochs}")
    if precision.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - tic
    mean = float(total) / max(seen, 1)
    if not np.isfinite(mean):
        raise FloatingPointError(
            f"training diverged in epoch {epoch + 1}: mean loss {mean} (lr={config.lr} too high?)"
        )
    return mean, seen, seconds


def _evaluate_all(
    model, data: TrialData, config: TrialConfig, precision, shifts: bool = True
) -> dict[str, float]:
    """``val/<m>`` for the train domain and ``eval/<domain>/<m>`` for every domain.

    With ``shifts`` False only the train domain is evaluated (``config.shift_eval``).
    """
    out: dict[str, float] = {}
    main = keys.DETECTION_METRICS if config.task == "detection" else keys.CLASSIFICATION_METRICS
    for domain, split in data.evals.items():
        if not shifts and domain != config.train_domain:
            continue
        values = evaluate_split(model, split, config.task, precision)
        out.update({keys.eval_metric(domain, name): v for name, v in values.items()})
        if domain == config.train_domain:
            out.update({keys.val_metric(name): values[name] for name in main})
    return out


def _payload(model, optimizer, scheduler, precision, config, epoch, history) -> dict:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": precision.scaler.state_dict(),
        "epoch": epoch,
        "history": history,
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
    }
