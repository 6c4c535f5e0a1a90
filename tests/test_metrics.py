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
    return [
        {"boxes": g["boxes"], "scores": np.ones(len(g["labels"])), "labels": g["labels"]}
        for g in gt
    ]


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


def _one(boxes, labels, scores=None) -> dict:
    out = {"boxes": np.asarray(boxes, float).reshape(-1, 4), "labels": np.asarray(labels)}
    if scores is not None:
        out["scores"] = np.asarray(scores, float)
    return out


@pytest.mark.parametrize("backend", ["fast", "pycocotools"])
def test_detection_on_an_ignore_region_is_neither_hit_nor_false_positive(backend):
    truth = [_one([[10, 10, 50, 50]], [1])]
    region = [_one([[100, 100, 160, 160]], [1])]
    # The highest-scoring detection lies on the ignore region (a VOC difficult or COCO crowd).
    dets = [_one([[100, 100, 160, 160], [10, 10, 50, 50]], [1, 1], [0.95, 0.9])]
    plain = detection_metrics(dets, truth, CLASSES, backend)
    ignored = detection_metrics(dets, truth, CLASSES, backend, ignore=region)
    assert plain["map50"] == pytest.approx(0.5, abs=0.02)  # one FP ranked first
    assert ignored["map50"] == pytest.approx(1.0) and ignored["map"] == pytest.approx(1.0)
    # An ignore region nobody detects is no miss either.
    hit = [_one([[10, 10, 50, 50]], [1], [0.9])]
    found = detection_metrics(hit, truth, CLASSES, backend, ignore=region)
    assert found["map50"] == pytest.approx(1.0)
    # Ignore regions alone are no ground truth.
    none = detection_metrics(dets, [_one([], [])], CLASSES, backend, ignore=region)
    assert math.isnan(none["map"])


def test_classes_restrict_the_mean_and_the_per_class_keys():
    # A person-only trained model (LLVIP-like) scored on a three-class domain (FLIR-like):
    # it finds the person, and misses the car it never learnt.
    truth = [_one([[10, 10, 50, 50], [60, 60, 120, 100]], [1, 2])]
    dets = [_one([[10, 10, 50, 50]], [1], [0.9])]
    everything = detection_metrics(dets, truth, CLASSES)
    fair = detection_metrics(dets, truth, CLASSES, classes=("person",))
    assert everything["map50"] == pytest.approx(0.5)  # the unseen class halves the mean
    assert fair["map50"] == pytest.approx(1.0)
    assert set(fair) == {"map", "map50", class_ap("person")}
    # Detections of excluded classes do not count as false positives either.
    noisy = [_one([[10, 10, 50, 50], [0, 0, 5, 5]], [1, 2], [0.9, 0.99])]
    assert detection_metrics(noisy, truth, CLASSES, classes=("person",))["map50"] == 1.0
    with pytest.raises(ValueError, match="dog"):
        detection_metrics(dets, truth, CLASSES, classes=("dog",))
