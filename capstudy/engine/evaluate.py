"""Evaluate a model on cached splits: COCO AP for detection, top-1 for classification.

Inference and post-processing (score threshold, top-k, NMS) run on the model's device; a
split's detections then cross to the host in one transfer. Scoring (COCOeval) is host work,
so :func:`evaluate_splits` hands it to a worker thread and runs the next split's inference
meanwhile: the device is not left idle while the host counts matches.

The evaluation batch is the training batch: without gradients it needs less memory than a
training step, so evaluation never raises a trial's peak memory (which packed trials share).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from capstudy.engine.device import Precision
from capstudy.engine.model import classify, detect
from capstudy.metrics import detection_metrics, top1

# Batches prepared ahead of inference (as in training).
EVAL_PREFETCH = 2


def predict_split(
    model: nn.Module, split, task: str, precision: Precision, batch_size: int
) -> list[dict[str, np.ndarray]] | np.ndarray:
    """Host-side predictions of ``model`` on every image of ``split``, in order.

    Returns:
        Detection: per image {"boxes" (n, 4), "scores" (n,), "labels" (n,)} numpy arrays.
        Classification: predicted class indices (N,).
    """
    from capstudy.data import BatchLoader

    loader = BatchLoader(
        split,
        batch_size,
        shuffle=False,
        seed=0,
        device=precision.device,
        prefetch=EVAL_PREFETCH if precision.device.type == "cuda" else 0,
    )
    was_training = model.training
    model.eval()
    try:
        if task != "detection":
            preds = [classify(model, images, precision) for images, _ in loader]
            return torch.cat(preds).cpu().numpy()
        rows, counts = [], []
        for images, _ in loader:
            for out in detect(model, images, precision):
                counts.append(len(out["scores"]))
                rows.append(
                    torch.cat(
                        [out["boxes"], out["scores"][:, None], out["labels"][:, None].float()],
                        dim=1,
                    )
                )
        # One (n, 6) transfer for the whole split (labels are small integers: exact in float).
        table = torch.cat(rows).cpu().numpy() if rows else np.zeros((0, 6), np.float32)
        per_image = np.split(table, np.cumsum(counts)[:-1]) if counts else []
        return [
            {"boxes": t[:, :4], "scores": t[:, 4], "labels": t[:, 5].astype(np.int64)}
            for t in per_image
        ]
    finally:
        model.train(was_training)


def score_split(predictions, split, task: str, classes=None) -> dict[str, float]:
    """Metrics of host-side ``predictions`` against ``split``'s ground truth.

    The one call into :mod:`capstudy.metrics`: ``map``, ``map50``, ``ap_<class>`` for
    detection, ``top1`` for classification. ``classes`` restricts detection metrics to those
    class names (the classes the train and evaluation domain share); the split's ignore
    regions (VOC ``difficult``, COCO ``iscrowd``) are neither hits nor false positives.
    """
    if task == "detection":
        truth = [
            {"boxes": np.asarray(b), "labels": np.asarray(lab)}
            for b, lab in zip(split.boxes, split.labels, strict=True)
        ]
        return detection_metrics(
            predictions, truth, split.class_names, classes=classes, ignore=split.ignore_regions()
        )
    assert split.targets is not None
    return {"top1": top1(predictions, np.asarray(split.targets))}


def evaluate_split(
    model: nn.Module, split, task: str, precision: Precision, batch_size: int, classes=None
) -> dict[str, float]:
    """Metrics of ``model`` on one cached split (see :func:`score_split` for the keys).

    The model is put in eval mode and restored to its previous mode afterwards.
    """
    predictions = predict_split(model, split, task, precision, batch_size)
    return score_split(predictions, split, task, classes)


def evaluate_splits(
    model: nn.Module,
    splits: dict,
    task: str,
    precision: Precision,
    batch_size: int,
    class_sets: dict | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per split name; scoring of one split overlaps inference of the next.

    ``class_sets`` maps a split name to the classes its detection metrics cover (none: all).
    """
    class_sets = class_sets or {}
    with ThreadPoolExecutor(1, thread_name_prefix="capstudy-score") as pool:
        pending: dict[str, Future] = {}
        for name, split in splits.items():
            predictions = predict_split(model, split, task, precision, batch_size)
            pending[name] = pool.submit(score_split, predictions, split, task, class_sets.get(name))
        return {name: future.result() for name, future in pending.items()}
