"""BatchLoader: shapes, determinism across reruns and epochs, and augmentation on boxes."""

from __future__ import annotations

import numpy as np
import torch
from data_fixtures import write_imagefolder, write_llvip

from capstudy.data import Augment, BatchLoader, get_split
from capstudy.data.cache import CachedSplit


def _split(tmp_path, n=6):
    roots = {"llvip": str(write_llvip(tmp_path / "llvip", n_train=n))}
    return get_split("llvip/ir", "train", (40, 32), roots=roots)


def _flat(loader):
    return [(x.clone(), [dict(t) for t in y]) for x, y in loader]


def test_batches_shapes_and_ranges(tmp_path):
    split = _split(tmp_path, n=5)
    batches = list(BatchLoader(split, 2, shuffle=False, seed=0))
    assert [x.shape[0] for x, _ in batches] == [2, 2, 1]
    x, y = batches[0]
    assert x.shape == (2, 3, 32, 40) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert torch.allclose(
        x[0].permute(1, 2, 0) * 255, torch.from_numpy(np.array(split.images[0])).float()
    )
    assert y[0]["boxes"].dtype == torch.float32 and y[0]["labels"].dtype == torch.int64
    assert len(BatchLoader(split, 2, shuffle=False, seed=0, drop_last=True)) == 2


def test_deterministic_reruns_and_different_epochs(tmp_path):
    split = _split(tmp_path)

    def run():
        loader = BatchLoader(split, 4, shuffle=True, seed=3, augment=True)
        return _flat(loader), _flat(loader)  # epoch 0, then epoch 1

    (a0, a1), (b0, b1) = run(), run()
    for (xa, ya), (xb, yb) in zip(a0 + a1, b0 + b1, strict=True):
        assert torch.equal(xa, xb)
        for ta, tb in zip(ya, yb, strict=True):
            assert torch.equal(ta["boxes"], tb["boxes"])
    assert not all(torch.equal(x0, x1) for (x0, _), (x1, _) in zip(a0, a1, strict=True))
    loader = BatchLoader(split, 4, shuffle=True, seed=3, augment=True)
    loader.set_epoch(1)
    assert torch.equal(_flat(loader)[0][0], a1[0][0])


def _bright_block_split(n=16) -> CachedSplit:
    """Images with one white box on black, so a box that follows its object stays white."""
    rng = np.random.default_rng(0)
    images = np.zeros((n, 48, 64, 3), np.uint8)
    boxes, labels = [], []
    for i in range(n):
        x1, y1 = rng.integers(0, 40), rng.integers(0, 28)
        w, h = rng.integers(10, 24), rng.integers(10, 20)
        x2, y2 = min(64, x1 + w), min(48, y1 + h)
        images[i, y1:y2, x1:x2] = 255
        boxes.append(np.array([[x1, y1, x2, y2]], np.float32))
        labels.append(np.array([1]))
    return CachedSplit(
        "t/rgb",
        "train",
        (64, 48),
        "detection",
        images,
        ("person",),
        "x",
        None,  # type: ignore[arg-type]
        boxes=boxes,
        labels=labels,
    )


def test_augmented_boxes_stay_valid_and_follow_their_objects():
    split = _bright_block_split()
    aug = Augment(flip=0.5, scale=(0.6, 1.6), scale_p=1.0, brightness=0.2, contrast=0.2)
    boxes_seen = False
    for epoch in range(6):
        loader = BatchLoader(split, 8, shuffle=True, seed=epoch, augment=aug)
        for x, targets in loader:
            for img, t in zip(x, targets, strict=True):
                b = t["boxes"]
                assert ((b[:, 2] - b[:, 0]) >= 2).all() and ((b[:, 3] - b[:, 1]) >= 2).all()
                assert (b >= 0).all() and (b[:, 2] <= 64).all() and (b[:, 3] <= 48).all()
                for x1, y1, x2, y2 in b.round().int().tolist():
                    # Inner part of the box is the bright object, whatever the zoom and flip.
                    inner = img[:, y1 + 1 : y2 - 1, x1 + 1 : x2 - 1]
                    assert inner.numel() == 0 or inner.mean() > img.mean() + 0.2
                boxes_seen |= bool(len(b))
    assert boxes_seen


def test_classification_batches(tmp_path):
    roots = {"imagenet": str(write_imagefolder(tmp_path / "inet", classes=3, per_class=3))}
    split = get_split("imagenet/rgb", "train", 16, roots=roots)
    ys = [y for _, y in BatchLoader(split, 4, shuffle=True, seed=0, augment=True)]
    assert sorted(torch.cat(ys).tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
