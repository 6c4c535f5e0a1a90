"""Evaluation: device post-processing with one transfer, scoring overlapped with inference."""

from __future__ import annotations

import torch
from enginefixtures import small_data  # noqa: F401  (fixture)

from capstudy.data import BatchLoader, get_split
from capstudy.engine.device import precision_for
from capstudy.engine.evaluate import evaluate_split, evaluate_splits, predict_split
from capstudy.engine.model import detect
from capstudy.heads import build_detector
from capstudy.metrics import detection_metrics
from capstudy.variants import make_variant

CPU = precision_for(torch.device("cpu"), False)


def _trained_ish_model():
    torch.manual_seed(0)
    model = build_detector(make_variant("efficientnet_b0", -7), 3, 64, score_thresh=0.0)
    return model.eval()


def test_batched_predictions_equal_per_image_detections():
    split = get_split("synth_a/rgb", "eval", 64)
    model = _trained_ish_model()
    got = predict_split(model, split, "detection", CPU, batch_size=4)
    expected = []
    for images, _ in BatchLoader(split, 7, shuffle=False, seed=0):
        expected.extend(detect(model, images, CPU))
    assert len(got) == len(expected) == len(split)
    for g, e in zip(got, expected, strict=True):
        assert g["boxes"].shape == tuple(e["boxes"].shape)
        assert (abs(g["boxes"] - e["boxes"].numpy()) < 1e-3).all()
        assert (g["labels"] == e["labels"].numpy()).all()


def test_overlapped_scoring_gives_the_sequential_metrics():
    splits = {d: get_split(d, "eval", 64) for d in ("synth_a/rgb", "synth_a/ir", "synth_b/rgb")}
    model = _trained_ish_model()
    together = evaluate_splits(model, splits, "detection", CPU, batch_size=8)
    for name, split in splits.items():
        assert together[name] == evaluate_split(model, split, "detection", CPU, batch_size=8)
    one = splits["synth_a/ir"]
    preds = predict_split(model, one, "detection", CPU, batch_size=8)
    truth = [{"boxes": b, "labels": lab} for b, lab in zip(one.boxes, one.labels, strict=True)]
    assert together["synth_a/ir"] == detection_metrics(preds, truth, one.class_names)
    assert not model.training
