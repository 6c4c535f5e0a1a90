"""Optimizer and per-step learning-rate schedule of a trial."""

from __future__ import annotations

import math

import torch
from torch import nn

from capstudy.config import TrialConfig
from capstudy.recipes import GRAD_CLIP_NORM, SGD_MOMENTUM


def build_optimizer(model: nn.Module, config: TrialConfig) -> torch.optim.Optimizer:
    """AdamW or SGD with weight decay on weights only.

    Biases and norm parameters (1-D tensors) get no decay: decaying a BatchNorm/GroupNorm
    scale towards zero fights the normalisation and hurts the narrowest models most.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    on_cuda = bool(decay or no_decay) and (decay + no_decay)[0].is_cuda
    # One kernel for every parameter's update instead of a few per tensor (CUDA only). A
    # captured step (cuda_graphs) also needs the lr and step count as device tensors.
    fast = {"fused": True} if on_cuda and (config.fused_optimizer or config.cuda_graphs) else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=SGD_MOMENTUM, nesterov=True, **fast)
    if on_cuda and config.cuda_graphs:
        lr = torch.tensor(config.lr, device=(decay + no_decay)[0].device)
        return torch.optim.AdamW(groups, lr=lr, capturable=True, **fast)
    return torch.optim.AdamW(groups, lr=config.lr, **fast)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based) of ``total``.

    Linear warm-up from ``1 / (warmup + 1)`` to 1 over ``warmup`` steps, then cosine to 0
    or constant.
    """
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrialConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule for ``config.epochs`` epochs.

    Warm-up is capped at half the run, so a 1- or 2-epoch run (smoke studies, tests) still
    spends half its steps decaying rather than ending at the peak lr.
    """
    total = config.epochs * steps_per_epoch
    warmup = min(config.warmup_epochs * steps_per_epoch, total // 2)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, config.schedule)
    )


def optimizer_step(
    loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, scaler
) -> None:
    """One update: backward through the AMP scaler, clip, step (the trial's and bench's step).

    Gradients are unscaled before clipping so the clip norm means the same with and without
    fp16 loss scaling.
    """
    optimizer.zero_grad(set_to_none=True)
    backward(loss, scaler)
    apply_gradients(model, optimizer, scaler)


def backward(loss: torch.Tensor, scaler) -> None:
    """Gradients of ``loss`` (scaled for float16 AMP; the scaler is a no-op otherwise)."""
    scaler.scale(loss).backward()


def apply_gradients(model: nn.Module, optimizer: torch.optim.Optimizer, scaler) -> None:
    """Unscale, clip to :data:`GRAD_CLIP_NORM` and step (the step breakdown's "optimizer")."""
    scaler.unscale_(optimizer)
    nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
    scaler.step(optimizer)
    scaler.update()
