"""COCO detection metrics and top-1."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capstudy.keys import class_ap
from capstudy.metrics import coco_stats, detection_metrics, top1

CLASSES = ("person", "car", "traffic light")


def _ground_truth(rng: np.random.Generator, images: int, per_image: int = 4) -> list[dict]:
    out = []
    for _ in range(images):
        xy = rng.uniform(0, 180, size=(per_image, 2))
        wh = rng.uniform(8, 70, size=(per_image, 2))
        out.append({"boxes": np.hstack([xy, xy + wh]), "labels": rng.integers(1, 4, per_image)})
    return out


def _perfect(gt: list[dict]) -> list[dict]:
    return [{"boxes": g["boxes"], "scores": np.ones(len(g["labels"])), "labels": g["labels"]}
            for g in gt]  # fmt: skip


def test_perfect_predictions_score_one():
    gt = _ground_truth(np.random.default_rng(0), 6)
    metrics = detection_metrics(_perfect(gt), gt, CLASSES)
    assert metrics["map"] == pytest.approx(1.0)
    assert metrics["map50"] == pytest.approx(1.0)
    for name in CLASSES:
        assert metrics[class_ap(name)] == pytest.approx(1.0)


def test_shifted_boxes_score_less():
    gt = _ground_truth(np.random.default_rng(1), 6)
    shifted = _perfect(gt)
    for pred, g in zip(shifted, gt):
        w = g["boxes"][:, 2] - g["boxes"][:, 0]
        pred["boxes"] = g["boxes"] + np.stack([w * 0.2, 0 * w, w * 0.2, 0 * w], axis=1)
    metrics = detection_metrics(shifted, gt, CLASSES)
    # IoU of a box shifted by 20 % of its width is 0.8 / 1.2 = 0.67: counts at .5, not at .75+.
    assert metrics["map50"] == pytest.approx(1.0)
    assert 0.0 < metrics["map"] < 0.5


def test_fast_path_equals_pycocotools_on_noisy_predictions():
    rng = np.random.default_rng(2)
    gt = _ground_truth(rng, 40, per_image=5)
    gt[3] = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, dtype=int)}  # background image
    predictions = []
    for g in gt:
        keep = rng.random(len(g["labels"])) < 0.8  # some misses
        boxes = g["boxes"][keep] + rng.normal(0, 4, size=(int(keep.sum()), 4))
        extra = _ground_truth(rng, 1, per_image=2)[0]  # some false positives
        predictions.append(
            {
                "boxes": np.vstack([boxes, extra["boxes"]]),
                "scores": rng.uniform(0.05, 1, size=len(boxes) + 2),
                "labels": np.concatenate([g["labels"][keep], extra["labels"]]),
            }
        )
    fast = coco_stats(predictions, gt, CLASSES, backend="fast")
    reference = coco_stats(predictions, gt, CLASSES, backend="pycocotools")
    np.testing.assert_allclose(fast, reference, atol=1e-9)
    assert 0.1 < fast[0] < 0.9
    ours = detection_metrics(predictions, gt, CLASSES, backend="fast")
    ref = detection_metrics(predictions, gt, CLASSES, backend="pycocotools")
    assert ours == pytest.approx(ref)


def test_empty_images_and_empty_results_do_not_crash():
    gt = _ground_truth(np.random.default_rng(3), 2)
    empty_gt = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, dtype=int)}
    empty_pred = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0)}
    with_blank = detection_metrics([*_perfect(gt), empty_pred], [*gt, empty_gt], CLASSES)
    assert with_blank["map"] == pytest.approx(1.0)
    nothing_found = detection_metrics([empty_pred, empty_pred], gt, CLASSES)
    assert nothing_found["map"] == 0.0 and nothing_found["map50"] == 0.0
    no_truth = detection_metrics([empty_pred], [empty_gt], CLASSES)
    assert math.isnan(no_truth["map"])


def test_top1():
    assert top1([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert math.isnan(top1([], []))
