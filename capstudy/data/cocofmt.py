"""Readers for COCO-JSON layouts: COCO 2017 instances and FLIR ADAS v2.

COCO 2017::

    <root>/annotations/instances_train2017.json, instances_val2017.json
    <root>/train2017/000000000009.jpg, <root>/val2017/…   (``file_name`` relative to these)

FLIR ADAS v2::

    <root>/images_rgb_train/coco.json       ``file_name`` is ``data/video-….jpg``
    <root>/images_rgb_train/data/…
    <root>/images_thermal_train/…, images_rgb_val/…, images_thermal_val/…

In v2 the RGB and thermal sets are annotated separately (not pixel-aligned pairs), so each
modality is its own COCO file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capstudy.data.domains import SPLIT_ALIASES
from capstudy.data.index import Problem, RawIndex, RawSample


def coco_paths(fmt: str, root: Path, split: str, modality: str) -> tuple[Path, Path]:
    """(annotation JSON, folder that ``file_name`` is relative to) for a split."""
    (name,) = SPLIT_ALIASES[fmt][split]
    if fmt == "coco":
        return root / "annotations" / f"instances_{name}.json", root / name
    folder = root / f"images_{'rgb' if modality == 'rgb' else 'thermal'}_{name}"
    return folder / "coco.json", folder


def read_coco(root: Path, split: str, modality: str, parse: bool = True, fmt: str = "coco"):
    """Index one split of a COCO-format folder (``fmt`` ``coco`` or ``flir_v2``).

    Returns:
        RawIndex; crowd annotations (``iscrowd=1``) are kept as ignore regions: evaluation
        neither rewards nor punishes a detection on one (the COCO protocol), and training
        does not use them (as torchvision's COCO recipe drops them).
    """
    ann_file, image_dir = coco_paths(fmt, root, split, modality)
    if not ann_file.is_file():
        return RawIndex("detection", [], [Problem(str(ann_file), "missing annotation file")])
    if not parse:
        files = [p for p in image_dir.rglob("*") if p.is_file() and p != ann_file]
        return RawIndex("detection", [], [], sources=[ann_file, *files])
    try:
        doc = json.loads(ann_file.read_text())
        images, anns, cats = doc["images"], doc.get("annotations", []), doc["categories"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return RawIndex("detection", [], [Problem(str(ann_file), f"not a COCO JSON ({exc!r})")])
    categories = {int(c["id"]): str(c["name"]) for c in cats}
    problems: list[Problem] = []
    by_id: dict[int, RawSample] = {}
    for im in images:
        path = image_dir / im["file_name"]
        size = (int(im.get("width", 0)), int(im.get("height", 0)))
        by_id[int(im["id"])] = RawSample(path, ann_file, size if min(size) > 0 else None)
        if not path.is_file():
            problems.append(Problem(str(path), f"missing image (listed in {ann_file.name})"))
    _add_annotations(anns, by_id, categories, ann_file, problems)
    missing = {p.path for p in problems if p.message.startswith("missing image")}
    samples = [s for s in by_id.values() if str(s.image) not in missing]
    names = tuple(categories[k] for k in sorted(categories))
    sources = [ann_file, *(s.image for s in by_id.values())]
    return RawIndex("detection", samples, problems, names, sources)


def _add_annotations(
    anns: list[dict[str, Any]],
    by_id: dict[int, RawSample],
    categories: dict[int, str],
    ann_file: Path,
    problems: list[Problem],
) -> None:
    for a in anns:
        where = f"{ann_file} (annotation id {a.get('id', '?')})"
        sample = by_id.get(int(a.get("image_id", -1)))
        if sample is None:
            problems.append(Problem(where, f"refers to unknown image id {a.get('image_id')}"))
            continue
        cat = categories.get(int(a.get("category_id", -1)))
        if cat is None:
            problems.append(Problem(where, f"unknown category id {a.get('category_id')}"))
            continue
        try:
            x, y, w, h = (float(v) for v in a["bbox"])
        except (KeyError, TypeError, ValueError):
            problems.append(Problem(where, "bbox is not [x, y, width, height]"))
            continue
        sample.objects.append((cat, x, y, x + w, y + h))
        sample.ignore.append(bool(a.get("iscrowd", 0)))


def read_flir_v2(root: Path, split: str, modality: str, parse: bool = True) -> RawIndex:
    """Index one split of a FLIR ADAS v2 folder."""
    return read_coco(root, split, modality, parse, fmt="flir_v2")
