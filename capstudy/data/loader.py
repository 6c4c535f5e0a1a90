"""Batches straight from the memory-mapped cache, with augmentations on tensors.

Decoding JPEGs is the cost a cache removes: a batch here is one fancy-index into the memmap (a
memcpy from the page cache), one uint8 → float conversion, and the augmentations as batched
tensor ops on the target device. No worker processes are needed, so a trial that owns one CPU
does not fight its own workers for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from capstudy.data.cache import CachedSplit

# Fill for the border when scale jitter zooms out: mid grey (YOLO's 114/255), which reads as
# neither hot nor cold in thermal and neither night nor glare in RGB.
PAD_VALUE = 114 / 255
# Boxes narrower or shorter than this after a crop are mostly outside the view; dropped.
MIN_BOX_SIDE = 2.0


@dataclass(frozen=True)
class Augment:
    """Training augmentations (all on tensors).

    Attributes:
        flip: probability of a horizontal flip per image.
        scale: range of the per-batch zoom factor; >1 crops, <1 shrinks and pads.
        brightness: per-image brightness factor drawn from 1 ± this.
        contrast: per-image contrast factor drawn from 1 ± this.
    """

    flip: float = 0.5
    scale: tuple[float, float] = (0.8, 1.25)
    brightness: float = 0.25
    contrast: float = 0.25


Targets = list[dict[str, torch.Tensor]] | torch.Tensor


class BatchLoader:
    """Iterate over (images, targets) batches of a CachedSplit.

    Images are float32 (B, 3, H, W) in [0, 1] on ``device``; detection targets are a list of
    {"boxes": float32 (k, 4), "labels": int64 (k,)} on ``device``; classification targets an
    int64 (B,) tensor. Each pass uses the current epoch (``set_epoch``, else 0, 1, 2 … in the
    order of passes) with ``seed`` for shuffling and augmentation, so epochs differ and reruns
    repeat exactly.
    """

    def __init__(
        self,
        split: CachedSplit,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        device: torch.device | str = "cpu",
        augment: bool | Augment = False,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.device = torch.device(device)
        self.augment = Augment() if augment is True else (augment or None)
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass (later passes continue from it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Targets]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        n = len(self.split)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        for i in range(len(self)):
            # Sorted within the batch: memmap reads in file order are faster on a cold cache.
            idx = np.sort(order[i * self.batch_size : (i + 1) * self.batch_size])
            yield self._batch(idx, gen)

    def _batch(self, idx: np.ndarray, gen: torch.Generator) -> tuple[torch.Tensor, Targets]:
        x = torch.from_numpy(np.ascontiguousarray(self.split.images[idx]))
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        else:
            x = x.to(self.device)
        x = x.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
        x.mul_(1 / 255)
        if self.split.task == "classification":
            assert self.split.targets is not None
            y = torch.from_numpy(self.split.targets[idx])
            if self.augment:
                x, _ = augment_batch(x, None, self.augment, gen)
            return x, y.to(self.device)
        boxes = [torch.from_numpy(np.array(self.split.boxes[j])) for j in idx]
        labels = [torch.from_numpy(np.array(self.split.labels[j])) for j in idx]
        if self.augment:
            x, (boxes, labels) = augment_batch(x, (boxes, labels), self.augment, gen)
        return x, _targets_to(boxes, labels, self.device)


def _targets_to(
    boxes: list[torch.Tensor], labels: list[torch.Tensor], device: torch.device
) -> list[dict[str, torch.Tensor]]:
    if device.type == "cpu":
        return [{"boxes": b, "labels": lab} for b, lab in zip(boxes, labels, strict=True)]
    # One transfer per batch rather than two per image.
    counts = [len(b) for b in boxes]
    all_boxes = torch.cat(boxes).to(device, non_blocking=True).split(counts)
    all_labels = torch.cat(labels).to(device, non_blocking=True).split(counts)
    return [{"boxes": b, "labels": lab} for b, lab in zip(all_boxes, all_labels, strict=True)]


BoxLists = tuple[list[torch.Tensor], list[torch.Tensor]]


def augment_batch(
    x: torch.Tensor, targets: BoxLists | None, aug: Augment, gen: torch.Generator
) -> tuple[torch.Tensor, BoxLists | None]:
    """Scale jitter, horizontal flip and photometric jitter on a batch.

    Random numbers come from ``gen`` on the CPU, so a batch is the same on CPU and GPU. Box
    math runs on the CPU (a few numbers per image); pixels stay on ``x``'s device.

    Args:
        x: float (B, 3, H, W) in [0, 1].
        targets: per-image boxes (k, 4) xyxy in pixels and labels (k,), or None.
        aug: the augmentation settings.
        gen: CPU random generator.

    Returns:
        (augmented images, augmented targets). Boxes stay inside the image with sides of at
        least ``MIN_BOX_SIDE`` pixels; boxes cropped away below that are removed with their
        labels.
    """
    b, _, h, w = x.shape
    s = float(aug.scale[0] + (aug.scale[1] - aug.scale[0]) * torch.rand(1, generator=gen))
    u = torch.rand(b, 2, generator=gen)
    flips = torch.rand(b, generator=gen) < aug.flip
    bright = 1 + aug.brightness * (2 * torch.rand(b, generator=gen) - 1)
    contrast = 1 + aug.contrast * (2 * torch.rand(b, generator=gen) - 1)
    x, shifts = _rescale(x, s, u, targets[0] if targets else None)
    if targets is not None:
        targets = _move_boxes(targets, s, shifts, flips, w, h)
    if flips.any():
        sel = flips.nonzero().squeeze(1).to(x.device)
        x[sel] = x[sel].flip(-1)
    # Contrast around each image's mean, then brightness, fused into one multiply-add.
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    gain = (contrast * bright).view(b, 1, 1, 1).to(x.device)
    bias = mean * ((1 - contrast) * bright).view(b, 1, 1, 1).to(x.device)
    x = x.mul_(gain).add_(bias).clamp_(0, 1)
    return x, targets


def _rescale(
    x: torch.Tensor, s: float, u: torch.Tensor, boxes: list[torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zoom the batch by ``s`` and crop or pad back to its size; return per-image shifts.

    A shift (dx, dy) maps a zoomed pixel to the output: ``out = zoomed + shift``. When zooming
    in, the crop window is drawn among those that keep all of an image's boxes in view where one
    exists, so zooming rarely cuts objects.
    """
    b, c, h, w = x.shape
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if (nh, nw) == (h, w):
        return x, torch.zeros(b, 2)
    z = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)
    shifts = torch.zeros(b, 2)
    if s > 1:
        out = torch.empty_like(x)
        for i in range(b):
            lo, hi = torch.zeros(2), torch.tensor([nw - w, nh - h], dtype=torch.float32)
            if boxes is not None and len(boxes[i]):
                bx = boxes[i] * s
                first, last = bx[:, :2].min(0).values, bx[:, 2:].max(0).values
                klo = torch.maximum(lo, last - torch.tensor([w, h]))
                khi = torch.minimum(hi, first)
                if bool((klo <= khi).all()):
                    lo, hi = klo, khi
            ox, oy = (lo + u[i] * (hi - lo)).floor().int().tolist()
            out[i] = z[i, :, oy : oy + h, ox : ox + w]
            shifts[i] = torch.tensor([-ox, -oy], dtype=torch.float32)
        return out, shifts
    out = torch.full_like(x, PAD_VALUE)
    for i in range(b):
        ox, oy = (u[i] * torch.tensor([w - nw, h - nh])).floor().int().tolist()
        out[i, :, oy : oy + nh, ox : ox + nw] = z[i]
        shifts[i] = torch.tensor([ox, oy], dtype=torch.float32)
    return out, shifts


def _move_boxes(
    targets: BoxLists, s: float, shifts: torch.Tensor, flips: torch.Tensor, w: int, h: int
) -> BoxLists:
    boxes, labels = targets
    out_boxes, out_labels = [], []
    limit = torch.tensor([w, h, w, h], dtype=torch.float32)
    for i, (bx, lab) in enumerate(zip(boxes, labels, strict=True)):
        bx = bx * s + shifts[i].repeat(2)
        bx = torch.minimum(bx.clamp(min=0), limit)
        if flips[i]:
            bx = torch.stack([w - bx[:, 2], bx[:, 1], w - bx[:, 0], bx[:, 3]], dim=1)
        keep = ((bx[:, 2] - bx[:, 0]) >= MIN_BOX_SIDE) & ((bx[:, 3] - bx[:, 1]) >= MIN_BOX_SIDE)
        out_boxes.append(bx[keep].contiguous())
        out_labels.append(lab[keep])
    return out_boxes, out_labels
