"""Loader benchmark: batches from the memmap cache vs. decoding JPEGs every epoch.

Both sides run in the same process tree, one after the other, on the same split and size:

* ``cache``: ``BatchLoader`` over ``get_split`` (with and without augmentation);
* ``decode``: a plain torchvision-style ``Dataset`` (PIL open → RGB → resize → ``to_tensor``)
  in a ``DataLoader`` with worker processes, as a training script without a cache would do.

Each loader is warmed up for one pass (page cache, worker start), then all are timed in
interleaved rounds of ``epochs`` passes; the figure is each loader's median round in images per
second.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from capstudy.data.api import ensure_dataset, get_split
from capstudy.data.domains import DATASETS, parse_domain
from capstudy.data.index import finalize
from capstudy.data.labels import default_label_map
from capstudy.data.loader import BatchLoader
from capstudy.data.readers import read_raw


@dataclass
class BenchResult:
    """Throughput of one loader variant."""

    name: str
    images_per_s: float
    images: int
    seconds: float


class DecodeDataset(torch.utils.data.Dataset):
    """The no-cache baseline: decode, resize and convert each image on every access."""

    def __init__(
        self, files: list, boxes: list, labels: list, size: tuple[int, int], augment: bool
    ) -> None:
        self.files, self.boxes, self.labels, self.size = files, boxes, labels, size
        self.augment = _torchvision_augment() if augment else None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from torchvision import tv_tensors
        from torchvision.transforms.functional import to_tensor

        with Image.open(self.files[i]) as im:
            src = im.size
            im = im.convert("RGB").resize(self.size, Image.BILINEAR)
        scale = torch.tensor([self.size[0] / src[0], self.size[1] / src[1]] * 2)
        boxes = torch.as_tensor(self.boxes[i], dtype=torch.float32).reshape(-1, 4) * scale
        labels = torch.as_tensor(self.labels[i], dtype=torch.int64)
        if self.augment is None:
            return to_tensor(im), {"boxes": boxes, "labels": labels}
        w, h = self.size
        boxes = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w))
        x, boxes = self.augment(im, boxes)
        return x, {"boxes": boxes.as_subclass(torch.Tensor), "labels": labels}


def _torchvision_augment():
    """The baseline's augmentation: torchvision v2 flip + colour jitter on the PIL image.

    Lighter than the cache loader's (no scale jitter), so it favours the baseline.
    """
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.25, contrast=0.25),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def _collate(batch):
    images, targets = zip(*batch, strict=True)
    return torch.stack(images), list(targets)


def _passes(loader: Iterable, epochs: int, device: str) -> tuple[int, float]:
    n, start = 0, time.perf_counter()
    for _ in range(epochs):
        for images, _targets in loader:
            # The baseline's batches must reach the device too (a no-op for the cache loader).
            n += images.to(device).shape[0]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n, time.perf_counter() - start


def _measure(
    loaders: dict[str, Iterable], epochs: int, rounds: int, device: str
) -> list[BenchResult]:
    """Time every loader in interleaved rounds; report each one's median round.

    Interleaving and the median keep a burst of load from other processes on a shared machine
    from landing on one side of the comparison only.
    """
    for loader in loaders.values():
        for _ in loader:  # warm-up pass: page cache, worker start-up, first-touch allocations
            pass
    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in loaders}
    for _ in range(rounds):
        for name, loader in loaders.items():
            runs[name].append(_passes(loader, epochs, device))
    results = []
    for name, rs in runs.items():
        n, seconds = sorted(rs, key=lambda r: r[0] / r[1])[len(rs) // 2]
        results.append(BenchResult(name, n / seconds, n, seconds))
    return results


def run_data_bench(
    domain: str = "synth_a/rgb",
    size: tuple[int, int] = (320, 256),
    batch_size: int = 32,
    epochs: int = 1,
    workers: int = 2,
    rounds: int = 3,
    device: str = "cpu",
    threads: int = 1,
) -> list[BenchResult]:
    """Measure cache-backed and decode-every-epoch loaders on one detection domain.

    ``threads`` is torch's intra-op thread count in this process (the cache loader's budget;
    the baseline's workers use one thread each, as torch sets them). One is the default: a
    trial owns one CPU (design note: two 1-CPU trials beat one 2-CPU trial), and on a busy
    machine two intra-op threads made the cache loader several times slower, not faster.

    Returns:
        results for the cache and the decoding loader, with augmentation then without.
    """
    dataset, modality = parse_domain(domain)
    split = get_split(domain, "train", size)
    root = ensure_dataset(dataset)
    raw = read_raw(DATASETS[dataset].format, root, "train", modality)
    index = finalize(raw, default_label_map(dataset))
    files = [s.image for s in index.samples]
    boxes = [np.asarray(s.boxes, dtype=np.float32) for s in index.samples]
    labels = [np.asarray(s.labels, dtype=np.int64) for s in index.samples]
    loaders: dict[str, Iterable] = {}
    for augment in (True, False):
        tag = " + augment" if augment else ""
        loaders[f"cache{tag}"] = BatchLoader(
            split, batch_size, shuffle=True, seed=0, device=device, augment=augment
        )
        loaders[f"decode JPEG{tag} ({workers} workers)"] = torch.utils.data.DataLoader(
            DecodeDataset(files, boxes, labels, size, augment),
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            collate_fn=_collate,
            persistent_workers=workers > 0,
        )
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(loaders, epochs, rounds, device)
    finally:
        torch.set_num_threads(before)
