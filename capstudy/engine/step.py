"""The training step of a trial: eager, or captured once as a CUDA graph and replayed.

A tiny detector's step is a few hundred small kernels; launching them one by one from
Python costs more than running them. A CUDA graph records the launches of forward, loss,
backward, clipping and the optimizer once and replays them with one call. That needs fixed
shapes and no host syncs inside the step: the batch has a fixed size (a last, smaller batch
runs eagerly), the ground truth is padded to a fixed number of box slots (a batch with more
boxes than the slots runs eagerly), the batched FCOS loss keeps every shape fixed, the
anchors are computed once outside the graph, and the optimizer keeps its lr and step count
on the device (fused, capturable AdamW). float16 loss scaling reads the scale back to the
host, so graphs need bfloat16 (or float32).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from capstudy.config import TrialConfig
from capstudy.engine.device import Precision
from capstudy.engine.fcos_batched import pad_targets, padded_fcos_loss
from capstudy.engine.model import (
    classification_loss,
    detection_features,
    detection_loss,
    head_outputs_of,
)
from capstudy.engine.optim import apply_gradients, optimizer_step

Step = Callable[[torch.Tensor, object], torch.Tensor]
# Untimed steps on a side stream before capture (allocator, cuDNN algorithm choice), as
# PyTorch's CUDA graph recipe does; their updates are undone before training starts.
WARMUP_STEPS = 3


def make_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    precision: Precision,
    config: TrialConfig,
    slots: int = 0,
) -> Step:
    """The trial's step ``(images, targets) -> loss`` (detached, on the device).

    Args:
        model: The model, on its device.
        optimizer: Its optimizer (see :func:`capstudy.engine.optim.build_optimizer`).
        precision: Device and AMP settings.
        config: ``task``, ``batched_fcos``, ``cuda_graphs``, ``label_smoothing``.
        slots: Most ground-truth boxes of an image in the training split (graphs only).
    """
    graphs = (
        config.cuda_graphs
        and config.task == "detection"
        and precision.device.type == "cuda"
        and not precision.scaler.is_enabled()
    )
    if graphs:
        return GraphedStep(model, optimizer, precision, config.batch_size, max(slots, 1))

    def step(images: torch.Tensor, targets) -> torch.Tensor:
        if config.task == "detection":
            loss = detection_loss(model, images, targets, precision, config.batched_fcos)
        else:
            loss = classification_loss(model, images, targets, precision, config.label_smoothing)
        optimizer_step(loss, model, optimizer, precision.scaler)
        return loss.detach()

    return step


class GraphedStep:
    """The detection step as one CUDA graph; see the module docstring.

    Args:
        model: The FCOS detector on a CUDA device, in train mode.
        optimizer: A fused, capturable optimizer over its parameters.
        precision: bfloat16 or float32 (no loss scaling).
        batch_size: The graph's batch size.
        slots: Ground-truth boxes per image the graph holds.
    """

    def __init__(self, model, optimizer, precision: Precision, batch_size: int, slots: int):
        self.model, self.optimizer, self.precision = model, optimizer, precision
        self.batch_size, self.slots = batch_size, slots
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0  # batches that did not fit the graph (counted for tests)

    def fits(self, images: torch.Tensor, targets: list[dict]) -> bool:
        """Whether a batch has the graph's shapes (its size, at most ``slots`` boxes each)."""
        return len(images) == self.batch_size and all(
            len(t["labels"]) <= self.slots for t in targets
        )

    def __call__(self, images: torch.Tensor, targets: list[dict]) -> torch.Tensor:
        if not self.fits(images, targets):
            self.eager_steps += 1
            loss = detection_loss(self.model, images, targets, self.precision)
            optimizer_step(loss, self.model, self.optimizer, self.precision.scaler)
            return loss.detach()
        if self.graph is None:
            self._capture(images, targets)
        self._load(images, targets)
        self.graph.replay()  # type: ignore[union-attr]
        return self.loss.detach().clone()

    def _load(self, images: torch.Tensor, targets: list[dict]) -> None:
        boxes, labels, valid = pad_targets(targets, self.slots)
        self.images.copy_(images)
        self.boxes.copy_(boxes)
        self.labels.copy_(labels)
        self.valid.copy_(valid)

    def _prepare_static(self, images: torch.Tensor, targets: list[dict]) -> None:
        """The graph's input buffers (shaped like this batch) and its anchors, made once."""
        self.images = images.clone()
        self.boxes, self.labels, self.valid = pad_targets(targets, self.slots)
        with torch.no_grad():
            _, _, features, _, anchors = detection_features(
                self.model, images, None, self.precision
            )
        self.anchors = (anchors[0], [f.size(2) * f.size(3) for f in features])

    def _loss(self) -> torch.Tensor:
        _, _, _, head_outputs = head_outputs_of(self.model, self.images, None, self.precision)
        losses = padded_fcos_loss(
            self.model, (self.boxes, self.labels, self.valid), head_outputs, *self.anchors
        )
        return sum(losses.values())

    def _step(self) -> torch.Tensor:
        loss = self._loss()
        loss.backward()
        apply_gradients(self.model, self.optimizer, self.precision.scaler)
        return loss

    def _capture(self, images: torch.Tensor, targets: list[dict]) -> None:
        """Warm up on a side stream, undo the warm-up's updates, capture one step."""
        self._prepare_static(images, targets)
        saved = _snapshot(self.model, self.optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self.optimizer.zero_grad(set_to_none=True)
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        _restore(self.model, self.optimizer, saved)
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = self._step()


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[int, torch.Tensor]:
    """Copies of the parameters, buffers and optimizer state, keyed by tensor identity."""
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return {id(t): t.detach().clone() for t in tensors}


def _restore(model, optimizer, saved: dict[int, torch.Tensor]) -> None:
    """Copy ``saved`` back in place; optimizer state born in the warm-up is zeroed (fresh)."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            t.copy_(saved[id(t)])
        for state in optimizer.state.values():
            for v in state.values():
                if torch.is_tensor(v) and id(v) in saved:
                    v.copy_(saved[id(v)])
                elif torch.is_tensor(v):
                    v.zero_()
