"""Evaluation metrics: COCO detection AP and classification top-1.

Detection uses the COCO protocol (101-point interpolated precision, IoU thresholds
0.50:0.05:0.95, up to 100 detections per image, all object areas). The fast path is
faster-coco-eval, which gives the same 12 summary statistics as pycocotools 8-9x faster;
``tests/test_metrics.py`` holds the two equal, and ``backend="pycocotools"`` runs the
reference implementation.

Edge cases, decided here once:

* images with no ground truth and no detections are part of the set and change nothing;
* no detections at all -> every AP is 0.0 (the evaluators reject an empty result list);
* a class with no ground truth in the set has no per-class AP key (COCO marks it -1);
* no ground truth at all -> ``map`` and ``map50`` are NaN: the value is undefined, and a
  zero would read as a real, terrible result;
* ignore regions (VOC ``difficult``, COCO ``iscrowd``) enter COCOeval as crowd boxes, its
  ignore mechanism: a detection matched to one is neither a true nor a false positive, and
  an ignore region nobody finds is no miss;
* ``classes`` restricts everything (ground truth, detections, the mean, per-class keys) to
  the named classes, so a shift metric covers only the classes both domains annotate.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from capstudy.keys import class_ap

# Index of AP@[.5:.95] and AP@.5 in COCOeval.stats.
_STAT_MAP, _STAT_MAP50 = 0, 1


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def to_coco(
    predictions: Sequence[dict],
    ground_truth: Sequence[dict],
    class_names: Sequence[str],
    ignore: Sequence[dict] | None = None,
) -> tuple[dict, list[dict]]:
    """COCO ground-truth dict and result list from per-image boxes (xyxy pixels).

    Args:
        predictions: Per image ``{"boxes": (n, 4), "scores": (n,), "labels": (n,)}``, labels
            in 1..K (tensors or arrays).
        ground_truth: Per image ``{"boxes": (k, 4), "labels": (k,)}``, same order.
        class_names: K names; label ``i`` is ``class_names[i - 1]``.
        ignore: Per image ignore regions ``{"boxes", "labels"}``, same order (None: none);
            written as ``iscrowd=1`` annotations.

    Returns:
        (ground-truth dataset dict, list of detection dicts) with image ids 1..N.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truth)} images")
    if ignore is not None and len(ignore) != len(ground_truth):
        raise ValueError(f"{len(ignore)} ignore lists for {len(ground_truth)} images")
    images, annotations, results = [], [], []
    for image_id, (pred, gt) in enumerate(zip(predictions, ground_truth), start=1):
        # Width/height only bound COCO's area ranges; "all" ignores them.
        images.append({"id": image_id, "width": 0, "height": 0})
        _add_boxes(annotations, image_id, gt, crowd=0)
        if ignore is not None:
            _add_boxes(annotations, image_id, ignore[image_id - 1], crowd=1)
        boxes = _as_numpy(pred["boxes"]).reshape(-1, 4)
        for box, score, label in zip(boxes, _as_numpy(pred["scores"]), _as_numpy(pred["labels"])):
            x, y, w, h = _xywh(box)
            det = {"image_id": image_id, "category_id": int(label), "bbox": [x, y, w, h]}
            results.append({**det, "score": float(score)})
    categories = [{"id": i, "name": n} for i, n in enumerate(class_names, start=1)]
    gt_dict = {"images": images, "annotations": annotations, "categories": categories}
    return gt_dict, results


def _xywh(box: np.ndarray) -> tuple[float, float, float, float]:
    return float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])


def _add_boxes(annotations: list[dict], image_id: int, gt: dict, crowd: int) -> None:
    for box, label in zip(_as_numpy(gt["boxes"]).reshape(-1, 4), _as_numpy(gt["labels"])):
        x, y, w, h = _xywh(box)
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": int(label),
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": crowd,
            }
        )


def _restrict(gt: dict, results: list[dict], keep: set[int]) -> tuple[dict, list[dict]]:
    """Ground truth and detections of the categories in ``keep`` only."""
    gt = {
        "images": gt["images"],
        "annotations": [a for a in gt["annotations"] if a["category_id"] in keep],
        "categories": [c for c in gt["categories"] if c["id"] in keep],
    }
    return gt, [r for r in results if r["category_id"] in keep]


def _evaluate(gt: dict, results: list[dict], backend: str):
    """Run COCOeval (bbox) and return the evaluator after summarize()."""
    if backend == "fast":
        from faster_coco_eval import COCO, COCOeval_faster

        coco_gt = COCO(gt)
        evaluator = COCOeval_faster(
            coco_gt, coco_gt.loadRes(results), iouType="bbox", print_function=lambda *a: None
        )
    elif backend == "pycocotools":
        from pycocotools.coco import COCO as RefCOCO
        from pycocotools.cocoeval import COCOeval

        coco_gt = RefCOCO()
        coco_gt.dataset = gt
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco_gt.createIndex()
            evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iouType="bbox")
    else:
        raise ValueError(f"backend must be 'fast' or 'pycocotools', not {backend!r}")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def coco_stats(
    predictions: Sequence[dict],
    ground_truth: Sequence[dict],
    class_names: Sequence[str],
    backend: str = "fast",
) -> np.ndarray:
    """The 12 COCO summary statistics (``COCOeval.stats``); see :func:`to_coco` for inputs."""
    gt, results = to_coco(predictions, ground_truth, class_names)
    return np.asarray(_evaluate(gt, results, backend).stats, dtype=float)


def detection_metrics(
    predictions: Sequence[dict],
    ground_truth: Sequence[dict],
    class_names: Sequence[str],
    backend: str = "fast",
    *,
    classes: Sequence[str] | None = None,
    ignore: Sequence[dict] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, float]:
    """COCO ``map`` (AP@[.5:.95]), ``map50`` (AP@.5) and per-class AP (``ap_<class>``).

    Args:
        predictions: Per-image detections (see :func:`to_coco`).
        ground_truth: Per-image ground truth, same order.
        class_names: K class names.
        backend: ``fast`` (faster-coco-eval) or ``pycocotools`` (reference).
        classes: Score only these class names (None: all K); detections and ground truth of
            other classes are left out entirely.
        ignore: Per-image ignore regions (see :func:`to_coco`).
        timings: When given, the seconds of the COCO conversion (``convert``) and of COCOeval
            (``cocoeval``) are added to it.

    Returns:
        Metric name -> value in [0, 1] (NaN where undefined; see the module docstring).

    Raises:
        ValueError: ``classes`` names a class outside ``class_names``.
    """
    tic = time.perf_counter()
    gt, results = to_coco(predictions, ground_truth, class_names, ignore)
    if classes is not None:
        unknown = sorted(set(classes) - set(class_names))
        if unknown:
            raise ValueError(f"classes {unknown} are not among {list(class_names)}")
        keep = {i for i, n in enumerate(class_names, start=1) if n in set(classes)}
        gt, results = _restrict(gt, results, keep)
    present = sorted({a["category_id"] for a in gt["annotations"] if not a["iscrowd"]})
    converted = time.perf_counter()
    if timings is not None:
        timings["convert"] = timings.get("convert", 0.0) + converted - tic
    if not present:
        return {"map": math.nan, "map50": math.nan}
    if not results:
        out = {"map": 0.0, "map50": 0.0}
        out.update({class_ap(class_names[k - 1]): 0.0 for k in present})
        return out
    evaluator = _evaluate(gt, results, backend)
    if timings is not None:
        timings["cocoeval"] = timings.get("cocoeval", 0.0) + time.perf_counter() - converted
    stats = evaluator.stats
    out = {"map": max(float(stats[_STAT_MAP]), 0.0), "map50": max(float(stats[_STAT_MAP50]), 0.0)}
    # precision: [IoU thresholds, recall points, classes, area ranges, max dets];
    # area range 0 is "all" and the last max-dets setting is 100, as in stats[0].
    precision = np.asarray(evaluator.eval["precision"])[:, :, :, 0, -1]
    cat_ids = list(evaluator.params.catIds)
    for k in present:
        p = precision[:, :, cat_ids.index(k)]
        valid = p[p > -1]
        out[class_ap(class_names[k - 1])] = float(valid.mean()) if valid.size else 0.0
    return out


def top1(predicted: Any, target: Any) -> float:
    """Fraction of predicted class indices equal to the targets (NaN for no samples)."""
    pred, true = _as_numpy(predicted).reshape(-1), _as_numpy(target).reshape(-1)
    if pred.shape != true.shape:
        raise ValueError(f"{pred.shape[0]} predictions for {true.shape[0]} targets")
    return float((pred == true).mean()) if true.size else math.nan
