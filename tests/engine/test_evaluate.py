"""Evaluation: device post-processing with one transfer, scoring overlapped with inference."""

from __future__ import annotations

import math

import pytest
import torch
from enginefixtures import small_data  # noqa: F401  (fixture)

from capstudy.data import BatchLoader, get_split
from capstudy.engine.device import precision_for
from capstudy.engine.evaluate import (
    LossSum,
    evaluate_split,
    evaluate_splits,
    predict_split,
    split_loss,
)
from capstudy.engine.model import detect
from capstudy.heads import build_classifier, build_detector
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


@pytest.mark.parametrize("batched", [True, False])
def test_the_loss_from_the_predictions_pass_is_the_loss_pass(batched):
    """``val_eval: rungs`` takes val/loss from the mAP's own forward on the rung epochs: it
    must be the loss a forward-and-loss pass gives, and change nothing else."""
    splits = {
        "val": get_split("synth_a/rgb", "eval", 64),
        "ir": get_split("synth_a/ir", "eval", 64),
    }
    model = _trained_ish_model().train()
    both = evaluate_splits(model, splits, "detection", CPU, 8, batched=batched, loss_of="val")
    alone = split_loss(model, splits["val"], "detection", CPU, 8, batched)
    assert math.isfinite(alone) and alone > 0
    assert both["val"].pop("loss") == pytest.approx(alone, rel=1e-6)
    assert both == evaluate_splits(model, splits, "detection", CPU, 8, batched=batched)
    assert model.training  # its mode restored


def test_the_classifier_loss_from_the_predictions_pass_is_the_loss_pass():
    split = get_split("synth_imagenet/rgb", "eval", 64)
    torch.manual_seed(0)
    model = build_classifier(make_variant("efficientnet_b0", -7), len(split.class_names))
    both = evaluate_splits(model, {"val": split}, "classification", CPU, 8, loss_of="val")
    alone = split_loss(model, split, "classification", CPU, 8, batched=False)
    assert both["val"]["loss"] == pytest.approx(alone, rel=1e-6)
    assert 0 <= both["val"]["top1"] <= 1


def test_a_loss_pass_sums_on_the_device_and_weighs_batches_by_size():
    total = LossSum()
    assert math.isnan(total.mean())
    total.add(torch.tensor(2.0), 8)
    total.add(torch.tensor(5.0), 2)  # a last, partial batch counts for its 2 images
    assert total.mean() == pytest.approx((2 * 8 + 5 * 2) / 10) and total.images == 10
