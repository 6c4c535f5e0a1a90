"""Batches straight from the memory-mapped cache, with augmentations on tensors.

Decoding JPEGs is the cost a cache removes: a batch here is one fancy-index into the memmap (a
memcpy from the page cache), one uint8 → float conversion, and the augmentations as batched
tensor ops on the target device. No worker processes are needed, so a trial that owns one CPU
does not fight its own workers for it.

With ``prefetch > 0`` one background thread prepares the next batches while the caller trains
on the current one (:mod:`capstudy.data.prefetch`). On a GPU the gather lands in reused pinned
buffers, the copy and the augmentations run on the thread's own CUDA stream, and nothing on
this path waits for the device (no ``.cpu()``/``.item()`` on batch data), so preparation
overlaps compute.
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
        scale_p: fraction of batches that are zoomed at all (the zoom is the costliest step
            on a CPU; half the batches keeps most of its benefit at half the price).
        brightness: per-image brightness factor drawn from 1 ± this.
        contrast: per-image contrast factor drawn from 1 ± this.
    """

    flip: float = 0.5
    scale: tuple[float, float] = (0.8, 1.25)
    scale_p: float = 0.5
    brightness: float = 0.25
    contrast: float = 0.25


Targets = list[dict[str, torch.Tensor]] | torch.Tensor


class BatchLoader:
    """Iterate over (images, targets) batches of a CachedSplit.

    Images are float32 (B, 3, H, W) in [0, 1] on ``device``; detection targets are a list of
    {"boxes": float32 (k, 4), "labels": int64 (k,)} on ``device``; classification targets an
    int64 (B,) tensor. Each pass uses the current epoch (``set_epoch``, else 0, 1, 2 … in the
    order of passes) with ``seed`` for shuffling and augmentation, so epochs differ and reruns
    repeat exactly, with or without prefetching (one thread draws every random number in
    order).
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
        prefetch: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if prefetch < 0:
            raise ValueError("prefetch must be >= 0 (0 = prepare batches on the caller's thread)")
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.device = torch.device(device)
        self.augment = Augment() if augment is True else (augment or None)
        self.drop_last = drop_last
        self.prefetch = prefetch
        self.epoch = 0
        self._pinned: _PinnedRing | None = None

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass (later passes continue from it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Targets]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        if self.prefetch == 0:
            return self._batches(epoch)
        from capstudy.data.prefetch import prefetch

        return prefetch(lambda: self._batches(epoch), self.prefetch, self.device)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, Targets]]:
        n = len(self.split)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        for i in range(len(self)):
            # Sorted within the batch: memmap reads in file order are faster on a cold cache.
            idx = np.sort(order[i * self.batch_size : (i + 1) * self.batch_size])
            yield self._batch(idx, gen)

    def _gather(self, idx: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) of the images ``idx`` on the loader's device (a private copy)."""
        if self.device.type == "cpu":
            return torch.from_numpy(np.ascontiguousarray(self.split.images[idx]))
        if self._pinned is None:
            self._pinned = _PinnedRing((self.batch_size, *self.split.images.shape[1:]), slots=4)
        buf = self._pinned.next()
        np.take(self.split.images, idx, axis=0, out=buf.numpy()[: len(idx)])
        u8 = buf[: len(idx)].to(self.device, non_blocking=True)
        self._pinned.copied()  # the buffer is reused only after this copy has finished
        return u8

    def _batch(self, idx: np.ndarray, gen: torch.Generator) -> tuple[torch.Tensor, Targets]:
        # (B, H, W, 3) → (B, 3, H, W) as a channels-last view: no copy. Every later op keeps
        # that layout, which saves a relayout pass and suits oneDNN/cuDNN convolutions.
        x = self._gather(idx).permute(0, 3, 1, 2)
        detection = self.split.task == "detection"
        boxes = [np.asarray(self.split.boxes[j]) for j in idx] if detection else []
        labels = [np.asarray(self.split.labels[j]) for j in idx] if detection else []
        if self.augment:
            if self.device.type != "cpu":  # GPU kernels want float; uint8 only saves CPU work
                x = x.float().div_(255)
            x, (boxes, labels) = augment_batch(x, (boxes, labels), self.augment, gen)
        else:
            x = x.to(torch.float32).mul_(1 / 255)
        if not detection:
            assert self.split.targets is not None
            return x, to_device(torch.from_numpy(self.split.targets[idx]), self.device)
        return x, _targets_to(boxes, labels, self.device)


class _PinnedRing:
    """A few reused page-locked host buffers for the gather, each guarded by a CUDA event.

    Pinning a fresh buffer per batch costs a page-locking system call each time; reusing one
    is safe once the asynchronous copy out of it has finished, which its event tells. Waiting
    on that event happens on the preparing thread, never on the training thread.
    """

    def __init__(self, shape: tuple[int, ...], slots: int) -> None:
        self._buffers = [torch.empty(shape, dtype=torch.uint8).pin_memory() for _ in range(slots)]
        self._events: list[torch.cuda.Event | None] = [None] * slots
        self._i = -1

    def next(self) -> torch.Tensor:
        self._i = (self._i + 1) % len(self._buffers)
        event = self._events[self._i]
        if event is not None:
            event.synchronize()
        return self._buffers[self._i]

    def copied(self) -> None:
        event = torch.cuda.Event()
        event.record()
        self._events[self._i] = event


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` (a CPU tensor) on ``device`` without making the host wait for the device.

    A copy from pageable memory would block until the device has caught up; from pinned
    memory it is queued on the current stream like any kernel.
    """
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def _targets_to(
    boxes: list[np.ndarray], labels: list[np.ndarray], device: torch.device
) -> list[dict[str, torch.Tensor]]:
    counts = [len(b) for b in boxes]
    # One tensor (and one transfer to a GPU) per batch rather than two per image.
    all_boxes = torch.from_numpy(np.concatenate(boxes).astype(np.float32).reshape(-1, 4))
    all_labels = torch.from_numpy(np.concatenate(labels).astype(np.int64))
    all_boxes, all_labels = to_device(all_boxes, device), to_device(all_labels, device)
    return [
        {"boxes": b, "labels": lab}
        for b, lab in zip(all_boxes.split(counts), all_labels.split(counts), strict=True)
    ]


BoxLists = tuple[list[np.ndarray], list[np.ndarray]]


def augment_batch(
    x: torch.Tensor, targets: BoxLists, aug: Augment, gen: torch.Generator
) -> tuple[torch.Tensor, BoxLists]:
    """Scale jitter, horizontal flip and photometric jitter on a batch.

    Random numbers come from ``gen`` on the CPU, so a batch is the same on CPU and GPU. Box
    math runs in numpy (a few numbers per image); pixels stay on ``x``'s device.

    Args:
        x: (B, 3, H, W), uint8 in 0..255 or float in [0, 1].
        targets: per-image boxes (k, 4) xyxy in pixels and labels (k,) (empty lists for
            classification).
        aug: the augmentation settings.
        gen: CPU random generator.

    Returns:
        (float32 images in [0, 1] in x's memory format, targets). Boxes stay inside the image
        with sides of at least ``MIN_BOX_SIDE`` pixels; boxes cropped away below that are
        removed with their labels.
    """
    b, _, h, w = x.shape
    r = torch.rand(2, generator=gen).tolist()
    s = aug.scale[0] + (aug.scale[1] - aug.scale[0]) * r[0] if r[1] < aug.scale_p else 1.0
    u = torch.rand(b, 2, generator=gen).numpy()
    flips = (torch.rand(b, generator=gen) < aug.flip).numpy()
    bright = 1 + aug.brightness * (2 * torch.rand(b, generator=gen) - 1)
    contrast = 1 + aug.contrast * (2 * torch.rand(b, generator=gen) - 1)
    x, shifts = _rescale(x, s, u, targets[0] if targets[0] else None, flips)
    if targets[0]:
        targets = _move_boxes(targets, shifts, flips, w, h)
    # Contrast around each image's mean, then brightness: one multiply-add per pixel. The mean
    # comes from every 4th pixel, plenty for a jitter factor. It stays on x's device: bringing
    # it to the host would make every batch wait for the device (no overlap with training).
    mean = x[:, :, ::4, ::4].float().mean(dim=(1, 2, 3))
    scale = 1.0
    if x.dtype == torch.uint8:
        # The 1/255 of the conversion folds into the gain: one pass over the pixels fewer.
        mean, scale, x = mean / 255, 1 / 255, x.to(torch.float32)
    factors = to_device(torch.stack([contrast * bright * scale, (1 - contrast) * bright]), x.device)
    gain = factors[0].view(b, 1, 1, 1)
    bias = (mean * factors[1]).view(b, 1, 1, 1)
    return x.mul_(gain).add_(bias).clamp_(0, 1), targets


def _rescale(
    x: torch.Tensor, s: float, u: np.ndarray, boxes: list[np.ndarray] | None, flips: np.ndarray
) -> tuple[torch.Tensor, np.ndarray]:
    """Zoom the batch by ``s``, crop or pad back to its size, flip; return each image's map.

    ``x`` is a private copy (a memmap gather or a fresh conversion), so it may be overwritten.

    One zoom for the whole batch (multi-scale training in the YOLO manner), because a single
    batched resize is several times cheaper than one per image; crops and pads differ per image.
    The map (sx, sy, dx, dy) takes an input pixel to the output, ``out = in * s + d``, with
    the scale as actually rounded to whole pixels. When zooming
    in, the crop window is drawn among those that keep all of an image's boxes in view where one
    exists, so zooming rarely cuts objects.
    """
    b, c, h, w = x.shape
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    shifts = np.tile([nw / w, nh / h, 0.0, 0.0], (b, 1))
    if (nh, nw) == (h, w):
        for i in flips.nonzero()[0]:
            x[i] = x[i].flip(-1)
        return x, shifts
    # uint8 bilinear resize has a fast CPU kernel for channels-last input (our memmap layout).
    z = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)
    if s > 1:
        out = torch.empty_like(x)
        for i in range(b):
            lo, hi = np.zeros(2), np.array([nw - w, nh - h], dtype=np.float64)
            if boxes is not None and len(boxes[i]):
                bx = boxes[i] * np.tile(shifts[i, :2], 2)
                klo = np.maximum(lo, bx[:, 2:].max(0) - [w, h])
                khi = np.minimum(hi, bx[:, :2].min(0))
                if (klo <= khi).all():
                    lo, hi = klo, khi
            ox, oy = np.floor(lo + u[i] * (hi - lo)).astype(int)
            crop = z[i, :, oy : oy + h, ox : ox + w]
            out[i] = crop.flip(-1) if flips[i] else crop
            shifts[i, 2:] = (-ox, -oy)
        return out, shifts
    pad = round(PAD_VALUE * 255) if x.dtype == torch.uint8 else PAD_VALUE
    out = torch.empty_like(x).fill_(pad)
    for i in range(b):
        ox, oy = np.floor(u[i] * [w - nw, h - nh]).astype(int)
        out[i, :, oy : oy + nh, ox : ox + nw] = z[i]
        if flips[i]:
            out[i] = out[i].flip(-1)
        shifts[i, 2:] = (ox, oy)
    return out, shifts


def _move_boxes(targets: BoxLists, maps: np.ndarray, flips: np.ndarray, w: int, h: int) -> BoxLists:
    boxes, labels = targets
    out_boxes, out_labels = [], []
    for bx, lab, m, flip in zip(boxes, labels, maps, flips, strict=True):
        bx = np.clip(bx * np.tile(m[:2], 2) + np.tile(m[2:], 2), 0, [w, h, w, h])
        if flip:
            bx = np.stack([w - bx[:, 2], bx[:, 1], w - bx[:, 0], bx[:, 3]], axis=1)
        keep = ((bx[:, 2] - bx[:, 0]) >= MIN_BOX_SIDE) & ((bx[:, 3] - bx[:, 1]) >= MIN_BOX_SIDE)
        out_boxes.append(bx[keep].astype(np.float32))
        out_labels.append(lab[keep])
    return out_boxes, out_labels
