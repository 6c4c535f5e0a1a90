"""FCOS target assignment, loss and post-processing for a whole batch at once.

torchvision's ``FCOS.compute_loss`` and ``postprocess_detections`` loop over the images of a
batch in Python, read the foreground count back with ``.item()`` and select foreground
anchors by boolean masks; on a GPU each of those makes the host wait for the device, and for
a tiny trunk those waits, not the arithmetic, set the step time. Here the ground truth is
padded to one box count per batch (with a validity mask), every image is assigned at once,
and foreground anchors are selected by multiplying with a mask instead of indexing: no host
sync and no data-dependent shape (the foreground count stays a tensor). The values equal
torchvision's (tests hold them within 1e-5); only the order of summation differs.

Why the same rules: the assignment is FCOS's (center sampling with radius 1.5 strides, the
point inside the box, the box's largest side distance inside the level's range, the smallest
box winning), the losses are sigmoid focal (alpha 0.25, gamma 2), GIoU and centerness BCE,
each summed and divided by the batch's foreground count (at least 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, nms, sigmoid_focal_loss

# torchvision's FCOS constants: a candidate's match score is 1e8 minus its box area (the
# smallest box wins), and a score below 1e-5 means "no box matched".
_AREA_BASE = 1e8
_NO_MATCH = 1e-5
# Inner and outer size bounds of a level, in anchor sizes (FCOS: 4 and 8 strides).
_LOWER, _UPPER = 4, 8


def pad_targets(targets: list[dict], slots: int = 1) -> tuple[torch.Tensor, ...]:
    """Ground truth as padded tensors: boxes (N, M, 4), labels (N, M) and validity (N, M).

    ``M`` is the batch's largest box count, at least ``slots`` (at least one, so a batch with
    no boxes at all keeps a box dimension). Padding is read from the tensors' shapes, which
    the host knows without waiting for the device; padded labels are -1.
    """
    boxes = [t["boxes"].reshape(-1, 4) for t in targets]
    labels = [t["labels"].reshape(-1) for t in targets]
    padded_boxes = torch.nn.utils.rnn.pad_sequence(boxes, batch_first=True)
    padded_labels = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=-1)
    extra = max(slots, 1) - padded_boxes.shape[1]
    if extra > 0:
        padded_boxes = F.pad(padded_boxes, (0, 0, 0, extra))
        padded_labels = F.pad(padded_labels, (0, extra), value=-1)
    return padded_boxes, padded_labels, padded_labels >= 0


def level_bounds(anchors: torch.Tensor, per_level: list[int]) -> tuple[torch.Tensor, ...]:
    """Per-anchor (lower, upper) bounds of the box side distance a level is responsible for.

    The first level has no lower bound and the last no upper bound, as in torchvision.
    """
    sizes = anchors[:, 2] - anchors[:, 0]
    first, last = per_level[0], per_level[-1]
    lower = torch.cat([torch.zeros_like(sizes[:first]), sizes[first:] * _LOWER])
    upper = torch.cat([sizes[:-last] * _UPPER, torch.full_like(sizes[-last:], float("inf"))])
    return lower, upper


def assign(
    boxes: torch.Tensor,
    valid: torch.Tensor,
    anchors: torch.Tensor,
    per_level: list[int],
    radius: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each anchor's matched box index (N, A) and whether it is foreground (N, A).

    Args:
        boxes: Padded ground truth (N, M, 4), xyxy pixels.
        valid: Which of the M slots hold a box (N, M).
        anchors: The batch's anchors (A, 4) (every image of a batch shares them).
        per_level: Anchors per pyramid level, in order.
        radius: Center-sampling radius in strides (torchvision: 1.5).
    """
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2  # (A, 2)
    sizes = anchors[:, 2] - anchors[:, 0]
    gt_centers = (boxes[..., :2] + boxes[..., 2:]) / 2  # (N, M, 2)
    near = (centers[None, :, None, :] - gt_centers[:, None, :, :]).abs().amax(dim=3)
    match = near < radius * sizes[None, :, None]
    x, y = centers[None, :, None, 0], centers[None, :, None, 1]  # (1, A, 1)
    x0, y0, x1, y1 = (boxes[:, None, :, i] for i in range(4))  # (N, 1, M)
    dist = torch.stack([x - x0, y - y0, x1 - x, y1 - y], dim=3)  # (N, A, M, 4)
    match &= dist.amin(dim=3) > 0
    lower, upper = level_bounds(anchors, per_level)
    side = dist.amax(dim=3)
    match &= (side > lower[None, :, None]) & (side < upper[None, :, None])
    match &= valid[:, None, :]
    areas = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])  # (N, M)
    score = match.to(torch.float32) * (_AREA_BASE - areas[:, None, :])
    best, index = score.max(dim=2)
    return index, best >= _NO_MATCH


def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Elementwise GIoU loss, as torchvision's ``generalized_box_iou_loss`` without reduction.

    The intersection is clamped at zero instead of filled in through a boolean mask, which
    gives the same values without the mask's host sync.
    """
    x1, y1, x2, y2 = pred.unbind(dim=-1)
    x1g, y1g, x2g, y2g = target.unbind(dim=-1)
    inter_w = (torch.min(x2, x2g) - torch.max(x1, x1g)).clamp(min=0)
    inter_h = (torch.min(y2, y2g) - torch.max(y1, y1g)).clamp(min=0)
    inter = inter_w * inter_h
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    area_c = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (torch.max(y2, y2g) - torch.min(y1, y1g))
    return 1 - (iou - (area_c - union) / (area_c + eps))


def centerness(reg_targets: torch.Tensor) -> torch.Tensor:
    """FCOS centerness of encoded (l, t, r, b) distances, ``sqrt(min/max * min/max)``."""
    left, top, right, bottom = reg_targets.unbind(dim=-1)
    horizontal = torch.minimum(left, right) / torch.maximum(left, right)
    vertical = torch.minimum(top, bottom) / torch.maximum(top, bottom)
    return torch.sqrt(horizontal * vertical)


def batched_fcos_loss(
    model, targets: list[dict], head_outputs: dict, anchors, per_level: list[int], slots: int = 1
) -> dict[str, torch.Tensor]:
    """FCOS losses of a batch, equal to ``model.compute_loss`` (torchvision's FCOS).

    Args:
        model: The FCOS detector (its box coder and center-sampling radius are used).
        targets: Per image ``{"boxes": (k, 4), "labels": (k,)}`` on the model's device.
        head_outputs: ``cls_logits`` (N, A, C), ``bbox_regression`` (N, A, 4) and
            ``bbox_ctrness`` (N, A, 1), float32.
        anchors: The anchors, per image (a list, as torchvision passes them) or (A, 4).
        per_level: Anchors per pyramid level.
        slots: Pad the ground truth to at least this many boxes per image (a fixed shape for
            CUDA graphs).

    Returns:
        ``classification``, ``bbox_regression`` and ``bbox_ctrness`` (0-d tensors).
    """
    anchors = anchors[0] if isinstance(anchors, list | tuple) else anchors
    padded = pad_targets(targets, slots)
    return padded_fcos_loss(model, padded, head_outputs, anchors, per_level)


def padded_fcos_loss(
    model, padded: tuple, head_outputs: dict, anchors: torch.Tensor, per_level: list[int]
) -> dict[str, torch.Tensor]:
    """:func:`batched_fcos_loss` of ground truth already padded by :func:`pad_targets`.

    Every shape here is fixed by the batch size, the box slots and the anchors, so the
    function can be captured in a CUDA graph or vectorised over trials.
    """
    boxes, labels, valid = padded
    index, fg = assign(boxes, valid, anchors, per_level, model.center_sampling_radius)
    gt_boxes = boxes.gather(1, index[..., None].expand(-1, -1, 4))
    gt_labels = labels.gather(1, index)
    # Background anchors get their own anchor box as "target": every value below stays
    # finite (their terms are masked out), so no NaN can leak into the sums or gradients.
    gt_boxes = torch.where(fg[..., None], gt_boxes, anchors[None])
    logits = head_outputs["cls_logits"]
    classes = torch.arange(logits.shape[-1], device=logits.device)
    one_hot = ((gt_labels[..., None] == classes) & fg[..., None]).to(logits.dtype)
    loss_cls = sigmoid_focal_loss(logits, one_hot, reduction="sum")
    coder = model.head.box_coder
    pred_boxes = coder.decode(head_outputs["bbox_regression"], anchors[None])
    zero = logits.new_zeros(())
    loss_box = torch.where(fg, giou_loss(pred_boxes, gt_boxes), zero).sum()
    ctr_target = centerness(coder.encode(anchors[None], gt_boxes))
    ctr = F.binary_cross_entropy_with_logits(
        head_outputs["bbox_ctrness"].squeeze(dim=2), ctr_target, reduction="none"
    )
    loss_ctr = torch.where(fg, ctr, zero).sum()
    count = fg.sum().clamp(min=1).to(logits.dtype)
    return {
        "classification": loss_cls / count,
        "bbox_regression": loss_box / count,
        "bbox_ctrness": loss_ctr / count,
    }


def _level_candidates(model, head_outputs: dict, anchors, start: int, count: int, size):
    """One level's top-k candidates per image: boxes, scores, labels and validity (N, k)."""
    logits = head_outputs["cls_logits"][:, start : start + count]
    ctrness = head_outputs["bbox_ctrness"][:, start : start + count]
    num_classes = logits.shape[-1]
    scores = torch.sqrt(torch.sigmoid(logits) * torch.sigmoid(ctrness)).flatten(1)
    # Top-k among all, then "above the threshold": the same set as torchvision's top-k among
    # those above the threshold, with a fixed k.
    top, flat = scores.topk(min(model.topk_candidates, scores.shape[1]), dim=1)
    anchor_index = torch.div(flat, num_classes, rounding_mode="floor")
    regression = head_outputs["bbox_regression"][:, start : start + count]
    picked = regression.gather(1, anchor_index[..., None].expand(-1, -1, 4))
    boxes = model.head.box_coder.decode(picked, anchors[start : start + count][anchor_index])
    height, width = size
    boxes = torch.stack(
        [
            boxes[..., 0].clamp(0, width),
            boxes[..., 1].clamp(0, height),
            boxes[..., 2].clamp(0, width),
            boxes[..., 3].clamp(0, height),
        ],
        dim=-1,
    )
    return boxes, top, flat % num_classes, top > model.score_thresh


def batched_postprocess(
    model, head_outputs: dict, anchors, per_level: list[int], image_size: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Detections of a batch, equal to torchvision's per-image ``postprocess_detections``.

    Per level: score threshold and top-k for all images at once; then one non-maximum
    suppression over the whole batch, boxes grouped by (image, class); then each image's
    ``detections_per_img`` best survivors. Every image shares ``image_size`` (h, w), as the
    images of a batch do at the trial's input size.

    Returns:
        Padded per-image detections: ``boxes`` (N, D, 4), ``scores`` (N, D), ``labels``
        (N, D) and ``valid`` (N, D); each image's valid rows come first, best first.
    """
    anchors = anchors[0] if isinstance(anchors, list | tuple) else anchors
    parts, start = [], 0
    for count in per_level:
        parts.append(_level_candidates(model, head_outputs, anchors, start, count, image_size))
        start += count
    boxes, scores, labels, valid = (torch.cat(p, dim=1) for p in zip(*parts, strict=True))
    n, k = scores.shape
    num_classes = head_outputs["cls_logits"].shape[-1]
    image = torch.arange(n, device=scores.device)[:, None].expand(n, k)
    group = (image * num_classes + labels).flatten()
    # NMS reads its result back to the host anyway (torchvision's CUDA kernel does); the
    # candidates above the threshold are compacted at that same point, so the suppression
    # never compares the many below it.
    chosen = valid.flatten().nonzero().squeeze(1)
    keep = chosen[
        grouped_nms(
            boxes.reshape(-1, 4)[chosen], scores.flatten()[chosen], group[chosen], model.nms_thresh
        )
    ]
    kept = torch.zeros(n * k, dtype=torch.bool, device=scores.device)
    kept[keep] = True
    ranked = torch.where(kept.view(n, k), scores, torch.full_like(scores, -1.0))
    best, order = ranked.topk(min(model.detections_per_img, k), dim=1)
    return {
        "boxes": boxes.gather(1, order[..., None].expand(-1, -1, 4)),
        "scores": best,
        "labels": labels.gather(1, order),
        "valid": best >= 0,
    }


def grouped_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    group: torch.Tensor,
    threshold: float,
    one_pass: bool | None = None,
) -> torch.Tensor:
    """Indices of the boxes NMS keeps, each group suppressed on its own, best first.

    On a GPU, one suppression of every box, each group moved into its own region (the
    coordinate trick of torchvision's ``batched_nms``): one kernel, no per-group launches.
    On a CPU the suppression compares every pair of boxes, so one suppression over a whole
    batch's candidates costs ~batch-size times the per-image work; there torchvision's
    ``batched_nms`` runs a suppression per group (a CPU has no host syncs to avoid).
    ``one_pass`` forces one way (None: by the device); both keep the same boxes.
    """
    if not (boxes.device.type != "cpu" if one_pass is None else one_pass):
        return batched_nms(boxes, scores, group, threshold)
    if boxes.numel():
        offsets = group.to(boxes) * (boxes.max() + 1)
        boxes = boxes + offsets[:, None]
    return nms(boxes, scores, threshold)


def unpad(detections: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Per-image detection dicts (torchvision's format) from :func:`batched_postprocess`."""
    valid = detections["valid"]
    return [
        {name: detections[name][i][valid[i]] for name in ("boxes", "scores", "labels")}
        for i in range(valid.shape[0])
    ]
