"""Evaluate a model on cached splits: COCO AP for detection, top-1 for classification.

Inference and post-processing (score threshold, top-k, NMS) run on the model's device; a
split's detections then cross to the host in one transfer. Scoring (COCOeval) is host work,
so :func:`evaluate_splits` hands it to a worker thread and runs the next split's inference
meanwhile: the device is not left idle while the host counts matches.

The evaluation batch is the training batch: without gradients it needs less memory than a
training step, so evaluation never raises a trial's peak memory (which packed trials share).

The validation loss (``val/loss`` of ``val_eval: rungs``) comes from the same forward pass as
the predictions where both are due (:class:`LossSum`), and from :func:`split_loss`, a
forward and loss without post-processing, where only the loss is.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from capstudy.engine.device import Precision
from capstudy.engine.model import (
    classification_logits,
    classification_loss,
    detection_features,
    detection_loss,
    loss_of_outputs,
    postprocess,
)
from capstudy.engine.timing import NoTimer, PhaseTimer
from capstudy.metrics import detection_metrics, top1

# Batches prepared ahead of inference (as in training).
EVAL_PREFETCH = 2


class LossSum:
    """The mean training loss over the batches of a pass, summed on the device.

    Adding a batch's loss never synchronises the host; :meth:`mean` does, once.
    """

    def __init__(self) -> None:
        self._total: torch.Tensor | None = None
        self.images = 0

    def add(self, loss: torch.Tensor, images: int) -> None:
        """Count ``loss`` (a batch mean) for ``images`` images."""
        term = loss.detach() * images
        self._total = term if self._total is None else self._total + term
        self.images += images

    def mean(self) -> float:
        """The per-image mean (NaN for an empty pass)."""
        return float(self._total) / self.images if self.images else float("nan")


def _loader(split, batch_size: int, precision: Precision):
    from capstudy.data import BatchLoader

    return BatchLoader(
        split,
        batch_size,
        shuffle=False,
        seed=0,
        device=precision.device,
        prefetch=EVAL_PREFETCH if precision.device.type == "cuda" else 0,
    )


@torch.no_grad()
def split_loss(
    model: nn.Module, split, task: str, precision: Precision, batch_size: int, batched: bool
) -> float:
    """Mean training loss of ``model`` on ``split`` in eval mode: forward and loss only.

    The loss is the training objective (FCOS's summed losses, batched or torchvision's; or
    cross-entropy without label smoothing); the model's mode is restored after.
    """
    was_training, total = model.training, LossSum()
    model.eval()
    try:
        for images, targets in _loader(split, batch_size, precision):
            if task == "detection":
                loss = detection_loss(model, images, targets, precision, batched)
            else:
                loss = classification_loss(model, images, targets, precision, 0.0)
            total.add(loss, len(images))
    finally:
        model.train(was_training)
    return total.mean()


def predict_split(
    model: nn.Module,
    split,
    task: str,
    precision: Precision,
    batch_size: int,
    batched: bool = False,
    timer: PhaseTimer | None = None,
    loss: LossSum | None = None,
) -> list[dict[str, np.ndarray]] | np.ndarray:
    """Host-side predictions of ``model`` on every image of ``split``, in order.

    Args:
        model: The model (put in eval mode here, its mode restored after).
        split: A cached split.
        task: detection | classification.
        precision: Device and autocast settings.
        batched: Detection post-processing for the whole batch at once (one NMS), else
            torchvision's per image; the detections are the same.
        timer: Times the phases forward, post-processing and transfer (detection).
        loss: Also sums the training loss of every batch here, from the same forward pass
            (as :func:`split_loss` computes it).

    Returns:
        Detection: per image {"boxes" (n, 4), "scores" (n,), "labels" (n,)} numpy arrays.
        Classification: predicted class indices (N,).
    """
    loader = _loader(split, batch_size, precision)
    was_training = model.training
    model.eval()
    try:
        if task != "detection":
            return _classes(model, loader, precision, loss)
        return _detections(model, loader, precision, batched, timer or NoTimer(), loss)
    finally:
        model.train(was_training)


@torch.no_grad()
def _classes(model, loader, precision: Precision, loss: LossSum | None) -> np.ndarray:
    preds = []
    for images, targets in loader:
        logits = classification_logits(model, images, precision)
        if loss is not None:
            loss.add(F.cross_entropy(logits, targets), len(images))
        preds.append(logits.argmax(dim=1))
    return torch.cat(preds).cpu().numpy()


@torch.no_grad()
def _detections(model, loader, precision: Precision, batched: bool, timer: PhaseTimer, loss):
    """Per-image numpy detections of every batch, moved to the host in one transfer.

    Each batch becomes rows (boxes, score, label) on the device (labels are small integers:
    exact in float); the split's rows cross once, with a per-row image index (batched: the
    padded rows and their validity). ``loss``: see :func:`predict_split`.
    """
    rows, owners, images_seen = [], [], 0
    for images, targets in loader:
        timer.start()
        sizes = [tuple(img.shape[-2:]) for img in images]
        image_list, targets, features, head, anchors = detection_features(
            model, images, targets if loss is not None else None, precision
        )
        timer.mark("forward")
        if loss is not None:
            per_level = [f.size(2) * f.size(3) for f in features]
            outputs = (targets, head, anchors, per_level)
            loss.add(loss_of_outputs(model, outputs, batched), len(images))
            timer.mark("loss")
        out = postprocess(model, image_list, features, head, anchors, sizes, batched)
        if isinstance(out, dict):  # padded (N, D): invalid rows get image index -1
            index = torch.arange(len(images), device=out["scores"].device)[:, None] + images_seen
            owners.append(torch.where(out["valid"], index, -1).flatten())
            out = [{k: v.reshape(-1, *v.shape[2:]) for k, v in out.items()}]
        else:
            owners += [torch.full_like(o["labels"], images_seen + i) for i, o in enumerate(out)]
        for o in out:
            labels = o["labels"][:, None].float()
            rows.append(torch.cat([o["boxes"], o["scores"][:, None], labels], dim=1))
        images_seen += len(images)
        timer.mark("postprocess")
    timer.start()
    table = torch.cat(rows).cpu().numpy() if rows else np.zeros((0, 6), np.float32)
    owner = torch.cat(owners).cpu().numpy() if owners else np.zeros(0, np.int64)
    timer.mark("transfer")
    order = np.argsort(owner, kind="stable")  # per image, each image's rows in their order
    table, owner = table[order], owner[order]
    bounds = np.searchsorted(owner, np.arange(images_seen + 1))
    return [
        {
            "boxes": t[:, :4],
            "scores": t[:, 4],
            "labels": t[:, 5].astype(np.int64),
        }
        for t in (table[bounds[i] : bounds[i + 1]] for i in range(images_seen))
    ]


def score_split(
    predictions, split, task: str, classes=None, timings: dict | None = None
) -> dict[str, float]:
    """Metrics of host-side ``predictions`` against ``split``'s ground truth.

    The one call into :mod:`capstudy.metrics`: ``map``, ``map50``, ``ap_<class>`` for
    detection, ``top1`` for classification. ``classes`` restricts detection metrics to those
    class names (the classes the train and evaluation domain share); the split's ignore
    regions (VOC ``difficult``, COCO ``iscrowd``) are neither hits nor false positives.
    ``timings`` collects the seconds of the COCO conversion and COCOeval (detection).
    """
    if task == "detection":
        truth = [
            {"boxes": np.asarray(b), "labels": np.asarray(lab)}
            for b, lab in zip(split.boxes, split.labels, strict=True)
        ]
        return detection_metrics(
            predictions,
            truth,
            split.class_names,
            classes=classes,
            ignore=split.ignore_regions(),
            timings=timings,
        )
    assert split.targets is not None
    return {"top1": top1(predictions, np.asarray(split.targets))}


def evaluate_split(
    model: nn.Module,
    split,
    task: str,
    precision: Precision,
    batch_size: int,
    classes=None,
    batched: bool = False,
) -> dict[str, float]:
    """Metrics of ``model`` on one cached split (see :func:`score_split` for the keys).

    The model is put in eval mode and restored to its previous mode afterwards.
    """
    predictions = predict_split(model, split, task, precision, batch_size, batched)
    return score_split(predictions, split, task, classes)


def evaluate_splits(
    model: nn.Module,
    splits: dict,
    task: str,
    precision: Precision,
    batch_size: int,
    class_sets: dict | None = None,
    batched: bool = False,
    loss_of: str | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per split name; scoring of one split overlaps inference of the next.

    ``class_sets`` maps a split name to the classes its detection metrics cover (none: all);
    ``batched``: see :func:`predict_split`. The split named ``loss_of`` also gets ``"loss"``,
    its mean training loss, from the same forward pass.
    """
    class_sets = class_sets or {}
    losses: dict[str, LossSum] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="capstudy-score") as pool:
        pending: dict[str, Future] = {}
        for name, split in splits.items():
            loss = losses.setdefault(name, LossSum()) if name == loss_of else None
            predictions = predict_split(
                model, split, task, precision, batch_size, batched, loss=loss
            )
            pending[name] = pool.submit(score_split, predictions, split, task, class_sets.get(name))
        results = {name: future.result() for name, future in pending.items()}
    for name, loss in losses.items():
        results[name]["loss"] = loss.mean()
    return results
