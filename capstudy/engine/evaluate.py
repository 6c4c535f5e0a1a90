"""Evaluate a model on one split: COCO AP for detection, top-1 for classification."""

from __future__ import annotations

import torch
from torch import nn

from capstudy.engine.device import Precision
from capstudy.engine.model import classify, detect
from capstudy.metrics import detection_metrics, top1

# Evaluation batch: larger than training (no gradients), small enough for 1-CPU trials.
EVAL_BATCH = 32


def evaluate_split(
    model: nn.Module, split, task: str, precision: Precision, classes=None
) -> dict[str, float]:
    """Metrics of ``model`` on a cached split (``map``, ``map50``, ``ap_<class>`` / ``top1``).

    The model is put in eval mode and restored to its previous mode afterwards. ``classes``
    restricts detection metrics to those class names (the classes train and evaluation
    domain share); the split's ignore regions are neither hits nor false positives.
    """
    from capstudy.data import BatchLoader

    loader = BatchLoader(split, EVAL_BATCH, shuffle=False, seed=0, device=precision.device)
    was_training = model.training
    model.eval()
    try:
        if task == "detection":
            predictions, truth = [], []
            for images, targets in loader:
                for out in detect(model, images, precision):
                    predictions.append({k: v.cpu() for k, v in out.items()})
                truth.extend({k: v.cpu() for k, v in t.items()} for t in targets)
            ignore = split.ignore_regions()
            names = split.class_names
            return detection_metrics(predictions, truth, names, classes=classes, ignore=ignore)
        preds, labels = [], []
        for images, targets in loader:
            preds.append(classify(model, images, precision).cpu())
            labels.append(targets.cpu())
        return {"top1": top1(torch.cat(preds), torch.cat(labels))}
    finally:
        model.train(was_training)
