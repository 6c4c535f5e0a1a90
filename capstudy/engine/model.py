"""Model building and the forward passes the trainer and evaluator use.

The detection forward is torchvision's ``FCOS.forward`` split in two: the trunk, FPN and
head run under autocast (the expensive, precision-tolerant part), while the loss, anchor
matching and box decoding run in float32. torchvision's GIoU and focal losses and its box
coder lose accuracy in bfloat16/float16, and its own forward offers no such split.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.fcos import FCOS
from torchvision.models.detection.image_list import ImageList

from capstudy.config import TrialConfig
from capstudy.engine.device import Precision
from capstudy.engine.fcos_batched import batched_fcos_loss, batched_postprocess
from capstudy.heads import build_classifier, build_detector
from capstudy.variants import Variant, variant_of

__all__ = [
    "build_model",
    "classification_logits",
    "classification_loss",
    "detection_features",
    "detection_loss",
    "detection_outputs",
    "head_outputs_of",
    "loss_of_outputs",
    "variant_of",
]


def build_model(config: TrialConfig, variant: Variant, num_classes: int) -> nn.Module:
    """FCOS detector or classifier for the config's task, randomly initialised.

    Args:
        config: The trial config (task, image size, head width and depth).
        variant: The backbone variant.
        num_classes: K classes (detection labels 1..K; torchvision's background slot is
            added by :func:`capstudy.heads.build_detector`).
    """
    if config.task == "detection":
        return build_detector(
            variant,
            num_classes,
            config.input_size,
            head_width=config.head_width,
            head_convs=config.head_convs,
        )
    return build_classifier(variant, num_classes)


@functools.cache
def _norm_factors(mean: tuple, std: tuple, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(-mean / std, 1 / std) as (1, 3, 1, 1) float32 tensors, made once per device.

    Cached because building them from Python numbers each step would be a pageable
    host-to-device copy, which makes the host wait for the device.
    """
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    return (-m / s).to(device), (1 / s).to(device)


def _prepare(model: FCOS, images: torch.Tensor, targets):
    """Normalised batch, its ImageList and the targets, skipping an identity resize.

    torchvision's transform normalises and resizes image by image and re-pads into a new
    batch. At the trial's own input size its resize has scale 1 (an interpolation that only
    copies) and a multiple of 32 needs no padding, so the whole transform is one
    normalisation of the batch, in place of its layout (channels-last stays channels-last).
    Any other size goes through the transform unchanged.
    """
    transform = model.transform
    h, w = images.shape[-2:]
    identity = (
        len(transform.min_size) == 1
        and min(h, w) == transform.min_size[0]
        and max(h, w) <= transform.max_size
        and h % transform.size_divisible == 0
        and w % transform.size_divisible == 0
    )
    if not identity:
        image_list, targets = transform(list(images), targets)
        return image_list.tensors, image_list, targets
    bias, gain = _norm_factors(
        tuple(transform.image_mean), tuple(transform.image_std), str(images.device)
    )
    batch = torch.addcmul(bias, images, gain)  # (x - mean) / std as one multiply-add
    return batch, ImageList(batch, [(h, w)] * len(images)), targets


def detection_features(model: FCOS, images: torch.Tensor, targets, precision: Precision):
    """Run transform, trunk, FPN and head; return float32 head outputs and anchors."""
    image_list, targets, features, head_outputs = head_outputs_of(model, images, targets, precision)
    anchors = model.anchor_generator(image_list, features)
    return image_list, targets, features, head_outputs, anchors


def head_outputs_of(model: FCOS, images: torch.Tensor, targets, precision: Precision):
    """Transform, trunk, FPN and head without the anchors: ``(image_list, targets,
    features, head_outputs)``. The anchor generator copies Python numbers to the device,
    which a CUDA graph cannot hold; a graphed step computes anchors once, outside it."""
    batch, image_list, targets = _prepare(model, images, targets)
    if precision.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with precision.autocast():
        features = list(model.backbone(batch).values())
        head_outputs = model.head(features)
    head_outputs = {k: v.float() for k, v in head_outputs.items()}
    features = [f.float() for f in features]
    return image_list, targets, features, head_outputs


def detection_outputs(model: FCOS, images: torch.Tensor, targets, precision: Precision):
    """Trunk, FPN and head of a batch: ``(targets, head_outputs, anchors, per_level)``.

    The first half of :func:`detection_loss` (the "features forward" of a step breakdown).
    """
    _, targets, features, head_outputs, anchors = detection_features(
        model, images, targets, precision
    )
    per_level = [f.size(2) * f.size(3) for f in features]
    return targets, head_outputs, anchors, per_level


def loss_of_outputs(model: FCOS, outputs, batched: bool = True, slots: int = 1) -> torch.Tensor:
    """Target assignment and the summed FCOS losses of :func:`detection_outputs`' result.

    Args:
        model: The detector.
        outputs: What :func:`detection_outputs` returned.
        batched: The whole batch at once (:mod:`capstudy.engine.fcos_batched`, no host
            sync), else torchvision's per-image ``compute_loss``; the two are equal.
        slots: Ground-truth boxes per image to pad to (batched only; fixed shapes).
    """
    targets, head_outputs, anchors, per_level = outputs
    if batched:
        losses = batched_fcos_loss(model, targets, head_outputs, anchors, per_level, slots)
    else:
        losses = model.compute_loss(targets, head_outputs, anchors, per_level)
    return sum(losses.values())


def detection_loss(
    model: FCOS,
    images: torch.Tensor,
    targets: list[dict],
    precision: Precision,
    batched: bool = True,
) -> torch.Tensor:
    """Sum of FCOS's classification, box regression and centerness losses (float32)."""
    outputs = detection_outputs(model, images, targets, precision)
    return loss_of_outputs(model, outputs, batched)


@torch.no_grad()
def detect(model: FCOS, images: torch.Tensor, precision: Precision, batched: bool = False):
    """Detections (boxes in input pixels, scores, labels 1..K) of a batch.

    Returns:
        ``batched``: one dict of padded tensors (see
        :func:`capstudy.engine.fcos_batched.batched_postprocess`: boxes, scores, labels,
        valid), from one suppression over the whole batch; else a list of per-image dicts
        from torchvision's per-image post-processing. Both hold the same detections.
    """
    sizes = [tuple(img.shape[-2:]) for img in images]
    image_list, _, features, head_outputs, anchors = detection_features(
        model, images, None, precision
    )
    return postprocess(model, image_list, features, head_outputs, anchors, sizes, batched)


def postprocess(model: FCOS, image_list, features, head_outputs, anchors, sizes, batched: bool):
    """Score threshold, top-k and NMS of :func:`detect` (its "post-processing" phase)."""
    per_level = [f.size(2) * f.size(3) for f in features]
    identity = list(image_list.image_sizes) == sizes  # no resize: boxes are in input pixels
    if batched and identity and len(set(sizes)) == 1:
        return batched_postprocess(model, head_outputs, anchors, per_level, sizes[0])
    split_outputs = {k: list(v.split(per_level, dim=1)) for k, v in head_outputs.items()}
    split_anchors = [list(a.split(per_level)) for a in anchors]
    detections = model.postprocess_detections(split_outputs, split_anchors, image_list.image_sizes)
    if identity:
        return detections
    return model.transform.postprocess(detections, image_list.image_sizes, sizes)


def classification_logits(
    model: nn.Module, images: torch.Tensor, precision: Precision
) -> torch.Tensor:
    """The classifier's float32 logits (the forward under autocast)."""
    if precision.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with precision.autocast():
        return model(images).float()


def classification_loss(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    precision: Precision,
    label_smoothing: float,
) -> torch.Tensor:
    """Cross-entropy (float32) of the classifier's logits."""
    logits = classification_logits(model, images, precision)
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


@torch.no_grad()
def classify(model: nn.Module, images: torch.Tensor, precision: Precision) -> torch.Tensor:
    """Predicted class indices (0..K-1)."""
    return classification_logits(model, images, precision).argmax(dim=1)
