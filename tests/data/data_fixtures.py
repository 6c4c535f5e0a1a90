"""Tiny datasets in every published layout, written the way third-party tools write them.

Deliberately independent of ``capstudy.data.synth`` so the readers are tested against files
they did not produce. Each writer returns the root; ``break_*`` helpers damage one thing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 40, 32


def jpeg(path: Path, value: int = 90, mode: str = "RGB", size: tuple[int, int] = (W, H)) -> None:
    """Write a small JPEG: a dark image with a bright block (so flips are visible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), 20, np.uint8)
    arr[4:20, 2:14] = value
    im = Image.fromarray(arr)
    (im.convert("L") if mode == "L" else im).save(path, quality=95)


def voc(
    path: Path, objects: list[tuple[str, int, int, int, int]], size=(W, H), difficult=()
) -> None:
    """Write a VOC XML annotation (1-based inclusive corners, as labelImg writes them).

    ``difficult`` holds the positions of objects marked ``<difficult>1</difficult>``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{int(i in difficult)}</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for i, (n, a, b, c, d) in enumerate(objects)
    )
    path.write_text(
        f"<annotation><folder>x</folder><filename>{path.stem}.jpg</filename><size>"
        f"<width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>{objs}"
        "</annotation>"
    )


OBJECTS = [("person", 3, 5, 14, 20), ("bike", 20, 10, 35, 28), ("dog", 1, 1, 6, 6)]


def write_flir_aligned(root: Path, n_train: int = 3, n_val: int = 2) -> Path:
    """FLIR ADAS aligned: JPEGImages pairs, Annotations/*_PreviewData.xml, align_*.txt."""
    stems = [f"FLIR_{i:05d}" for i in range(1, n_train + n_val + 1)]
    for i, stem in enumerate(stems):
        jpeg(root / "JPEGImages" / f"{stem}_PreviewData.jpeg", 200 - i, mode="L")
        jpeg(root / "JPEGImages" / f"{stem}_RGB.jpg", 150 + i)
        voc(root / "Annotations" / f"{stem}_PreviewData.xml", OBJECTS)
    # The published lists use stems with the thermal suffix on some copies; mix both forms.
    (root / "align_train.txt").write_text("\n".join(stems[:n_train]) + "\n")
    val = [f"{s}_PreviewData" for s in stems[n_train:]]
    (root / "align_validation.txt").write_text("\n".join(val) + "\n")
    return root


def write_llvip(root: Path, n_train: int = 3, n_val: int = 2) -> Path:
    """LLVIP: visible/ and infrared/ {train,test}, one Annotations/<name>.xml per pair."""
    for split, first, n in (("train", 10001, n_train), ("test", 190001, n_val)):
        for i in range(n):
            stem = f"{first + i:06d}"
            jpeg(root / "visible" / split / f"{stem}.jpg", 120)
            jpeg(root / "infrared" / split / f"{stem}.jpg", 230)
            voc(root / "Annotations" / f"{stem}.xml", [("person", 3, 5, 14, 20)])
    return root


def _coco_doc(files: list[str], cats: list[tuple[int, str]]) -> dict:
    images = [{"id": i + 1, "file_name": f, "width": W, "height": H} for i, f in enumerate(files)]
    anns = [
        {
            "id": 2 * i + k + 1,
            "image_id": i + 1,
            "category_id": cats[k][0],
            "bbox": [2.0 + k * 15, 3.0, 10.0, 12.0],
            "area": 120.0,
            "iscrowd": 0,
        }
        for i in range(len(files))
        for k in range(2)
    ]
    categories = [{"id": c, "name": n, "supercategory": "x"} for c, n in cats]
    return {"images": images, "annotations": anns, "categories": categories}


def write_coco(root: Path, n_train: int = 3, n_val: int = 2) -> Path:
    """COCO 2017: annotations/instances_{train,val}2017.json + {train,val}2017/ images."""
    for folder, n in (("train2017", n_train), ("val2017", n_val)):
        files = [f"{i:012d}.jpg" for i in range(1, n + 1)]
        for f in files:
            jpeg(root / folder / f)
        doc = _coco_doc(files, [(1, "person"), (3, "car"), (18, "dog")])
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(doc))
    return root


def write_flir_v2(root: Path, n: int = 2) -> Path:
    """FLIR ADAS v2: images_{rgb,thermal}_{train,val}/coco.json with data/ images."""
    for mod in ("rgb", "thermal"):
        for split in ("train", "val"):
            folder = root / f"images_{mod}_{split}"
            files = [f"data/video-abc-frame-{i:06d}.jpg" for i in range(n)]
            for f in files:
                jpeg(folder / f, mode="L" if mod == "thermal" else "RGB")
            doc = _coco_doc(files, [(1, "person"), (2, "bike"), (3, "car")])
            (folder / "coco.json").write_text(json.dumps(doc))
    return root


def write_imagefolder(root: Path, classes: int = 3, per_class: int = 2) -> Path:
    """ImageNet style: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG."""
    for split in ("train", "val"):
        for c in range(classes):
            for i in range(per_class):
                jpeg(root / split / f"n{c:08d}" / f"n{c:08d}_{i}.JPEG", 40 + 60 * c)
    return root


def write_domainnet(root: Path, domain: str = "sketch") -> Path:
    """DomainNet: <domain>/<class>/*.jpg with <domain>_train.txt / <domain>_test.txt."""
    classes = ["aircraft_carrier", "zebra"]
    for split in ("train", "test"):
        lines = []
        for label, cls in enumerate(classes):
            for i in range(2):
                rel = f"{domain}/{cls}/{domain}_{label:03d}_{split}{i}.jpg"
                jpeg(root / rel, 60 + 100 * label)
                lines.append(f"{rel} {label}")
        (root / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def truncate(path: Path) -> None:
    """Cut a JPEG in half, as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
