"""Sanity that can fail: a briefly trained detector beats an untrained one, end to end.

The easy set is bright rectangles on a dark background, one class. Training runs through the
real loss and the real ``BatchLoader``; scoring runs through ``evaluate_split`` (the trial's
``detect`` -> COCO metrics path). A broken box convention, an off-by-one label, a transform
that resizes the images or a metric that ignores detections all make the trained model score
no better than the untrained one, and this test fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from capstudy.data import BatchLoader, CachedSplit
from capstudy.engine.device import precision_for
from capstudy.engine.evaluate import evaluate_split
from capstudy.engine.model import detection_loss
from capstudy.heads import build_detector
from capstudy.variants import make_variant

SIZE = 64


def _easy_split(n: int, seed: int) -> CachedSplit:
    rng = np.random.default_rng(seed)
    images = np.full((n, SIZE, SIZE, 3), 25, np.uint8)
    boxes = []
    for i in range(n):
        w, h = rng.integers(16, 33, size=2)
        x, y = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
        images[i, y : y + h, x : x + w] = 230
        boxes.append(np.array([[x, y, x + w, y + h]], np.float32))
    return CachedSplit(
        domain="easy/rgb",
        split="train",
        size=(SIZE, SIZE),
        task="detection",
        images=images,
        class_names=("person",),
        fingerprint="easy",
        path=None,
        boxes=boxes,
        labels=[np.ones(1, np.int64) for _ in range(n)],
    )


@pytest.mark.timeout(300)
def test_trained_detector_beats_an_untrained_one():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    precision = precision_for(torch.device("cpu"), amp=False)
    model = build_detector(make_variant("efficientnet_b0", -4), 1, SIZE, head_width=32)
    train, held_out = _easy_split(96, seed=1), _easy_split(24, seed=2)
    before = evaluate_split(model, held_out, "detection", precision, batch_size=8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loader = BatchLoader(train, 16, shuffle=True, seed=0)
    model.train()
    for _ in range(6):  # 36 steps
        for images, targets in loader:
            loss = detection_loss(model, images, targets, precision)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = evaluate_split(model, held_out, "detection", precision, batch_size=8)
    assert after["map50"] > before["map50"] + 0.3, (before, after)
    assert after["map50"] > 0.5, after
