"""Write the synthetic benchmark to disk in the published layouts.

==================  ==============  ===========================================  ============
dataset             layout          content                                      default size
==================  ==============  ===========================================  ============
``synth_a``         FLIR aligned    street scenes, RGB + thermal pairs, 320x256   400 / 100
``synth_b``         LLVIP           plaza scenes (persons), RGB + thermal pairs   400 / 100
``synth_coco``      COCO 2017       7 classes, RGB, 320x256                       600 / 100
``synth_imagenet``  class folders   120 classes, 64x64                            40 / 8 each
==================  ==============  ===========================================  ============

Every image draws from its own ``numpy`` Generator seeded with (seed, dataset, split, index),
so output bytes depend only on the seed (and the Pillow/libjpeg build), not on order or on how
many processes wrote it. Datasets are written into a temporary folder and renamed into place
under a lock, so several trials asking for a missing dataset at once get one complete copy.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from capstudy.data.synth_classes import class_names, render_class_image
from capstudy.data.synth_scenes import STYLES, render_scene
from capstudy.errors import CapstudyError
from capstudy.util import atomic_path, file_lock

SIZE = (320, 256)
MARKER = ".capstudy-synth.json"
VERSION = 2  # 2: synth_b draws persons only (like LLVIP)
SPECS = {
    "synth_a": {"style": "street", "layout": "flir_aligned", "train": 400, "val": 100},
    "synth_b": {"style": "plaza", "layout": "llvip", "train": 400, "val": 100},
    "synth_coco": {"style": "generic", "layout": "coco", "train": 600, "val": 100},
    "synth_imagenet": {"layout": "imagefolder", "train": 40, "val": 8},
}
_IDS = {name: i + 1 for i, name in enumerate(SPECS)}
COCO_IDS = {
    "person": 1,
    "bicycle": 2,
    "car": 3,
    "bus": 6,
    "traffic light": 10,
    "stop sign": 13,
    "dog": 18,
}


def _rng(seed: int, name: str, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _IDS[name], 0 if split == "train" else 1, index])


def _voc_xml(filename: str, size: tuple[int, int], depth: int, objects) -> str:
    lines = [
        "<annotation>",
        f"  <filename>{filename}</filename>",
        f"  <size><width>{size[0]}</width><height>{size[1]}</height><depth>{depth}</depth></size>",
    ]
    for name, (x1, y1, x2, y2) in objects:
        # VOC corners are 1-based and inclusive.
        lines += [
            "  <object>",
            f"    <name>{name}</name><pose>Unspecified</pose>",
            "    <truncated>0</truncated><difficult>0</difficult>",
            f"    <bndbox><xmin>{round(x1) + 1}</xmin><ymin>{round(y1) + 1}</ymin>"
            f"<xmax>{round(x2)}</xmax><ymax>{round(y2)}</ymax></bndbox>",
            "  </object>",
        ]
    return "\n".join([*lines, "</annotation>", ""])


def _write_flir(root: Path, name: str, seed: int, counts: dict[str, int]) -> None:
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    n = 0
    for split, listname in (("train", "align_train"), ("val", "align_validation")):
        stems = []
        for i in range(counts[split]):
            n += 1
            stem = f"FLIR_{n:05d}"
            rgb, ir, objects = render_scene(
                STYLES[SPECS[name]["style"]], _rng(seed, name, split, i), SIZE
            )
            rgb.save(root / "JPEGImages" / f"{stem}_RGB.jpg", quality=90)
            ir.save(root / "JPEGImages" / f"{stem}_PreviewData.jpeg", quality=90)
            xml = _voc_xml(f"{stem}_PreviewData.jpeg", SIZE, 1, objects)
            (root / "Annotations" / f"{stem}_PreviewData.xml").write_text(xml)
            stems.append(stem)
        (root / f"{listname}.txt").write_text("\n".join(stems) + "\n")


def _write_llvip(root: Path, name: str, seed: int, counts: dict[str, int]) -> None:
    (root / "Annotations").mkdir(parents=True)
    for split, folder, first in (("train", "train", 10001), ("val", "test", 190001)):
        vis, inf = root / "visible" / folder, root / "infrared" / folder
        vis.mkdir(parents=True)
        inf.mkdir(parents=True)
        for i in range(counts[split]):
            stem = f"{first + i:06d}"
            rgb, ir, objects = render_scene(
                STYLES[SPECS[name]["style"]], _rng(seed, name, split, i), SIZE
            )
            rgb.save(vis / f"{stem}.jpg", quality=80)
            # LLVIP stores its infrared frames as 3-channel grey JPEGs.
            ir.convert("RGB").save(inf / f"{stem}.jpg", quality=80)
            (root / "Annotations" / f"{stem}.xml").write_text(
                _voc_xml(f"{stem}.jpg", SIZE, 3, objects)
            )


def _write_coco(root: Path, name: str, seed: int, counts: dict[str, int]) -> None:
    (root / "annotations").mkdir(parents=True)
    cats = [
        {"supercategory": "object", "id": i, "name": n}
        for n, i in sorted(COCO_IDS.items(), key=lambda t: t[1])
    ]
    ann_id = 0
    for split, folder in (("train", "train2017"), ("val", "val2017")):
        (root / folder).mkdir()
        images, anns = [], []
        for i in range(counts[split]):
            image_id = i + 1 + (0 if split == "train" else 1_000_000)
            file_name = f"{image_id:012d}.jpg"
            rgb, _, objects = render_scene(STYLES["generic"], _rng(seed, name, split, i), SIZE)
            rgb.save(root / folder / file_name, quality=90)
            images.append(
                {"id": image_id, "file_name": file_name, "width": SIZE[0], "height": SIZE[1]}
            )
            for cls, (x1, y1, x2, y2) in objects:
                ann_id += 1
                w, h = round(x2 - x1, 1), round(y2 - y1, 1)
                ann = {"id": ann_id, "image_id": image_id, "category_id": COCO_IDS[cls]}
                anns.append({**ann, "bbox": [x1, y1, w, h], "area": round(w * h, 1), "iscrowd": 0})
        doc = {
            "info": {"description": f"capstudy {name} seed {seed}"},
            "licenses": [],
            "images": images,
            "annotations": anns,
            "categories": cats,
        }
        (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(doc))


def _write_imagefolder(root: Path, name: str, seed: int, counts: dict[str, int]) -> None:
    for split in ("train", "val"):
        for k, cls in enumerate(class_names()):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(counts[split]):
                rng = _rng(seed, name, split, k * 10_000 + i)
                render_class_image(k, rng).save(folder / f"{cls}_{i:05d}.JPEG", quality=90)


_WRITERS = {
    "flir_aligned": _write_flir,
    "llvip": _write_llvip,
    "coco": _write_coco,
    "imagefolder": _write_imagefolder,
}


def write_dataset(name: str, root: Path, seed: int = 0, scale: float = 1.0) -> float:
    """Write synthetic dataset ``name`` into the folder ``root`` (which must not exist).

    The files go to a temporary sibling first and are renamed into place at the end.

    Args:
        name: one of ``SPECS``.
        root: destination folder.
        seed: generator seed; same seed, same bytes.
        scale: multiplies the default image counts (tests use small values).

    Returns:
        seconds taken.
    """
    if name not in SPECS:
        raise CapstudyError(f"unknown synthetic dataset {name!r}; known: {', '.join(SPECS)}")
    start = time.perf_counter()
    spec = SPECS[name]
    counts = {s: max(1, round(spec[s] * scale)) for s in ("train", "val")}
    with atomic_path(root) as tmp:
        _WRITERS[spec["layout"]](tmp, name, seed, counts)
        marker = {"dataset": name, "seed": seed, "scale": scale, "version": VERSION}
        marker["counts"] = counts
        (tmp / MARKER).write_text(json.dumps(marker) + "\n")
    return time.perf_counter() - start


def ensure_synthetic(name: str, root: Path, seed: int = 0, scale: float = 1.0) -> Path:
    """Generate ``name`` at ``root`` unless it exists; safe when processes race for it."""
    _locked_write(name, root, seed, scale)
    return root


def _locked_write(name: str, root: Path, seed: int, scale: float = 1.0) -> float:
    with file_lock(root.parent / f".{root.name}.lock"):
        # Checked under the lock: whoever waited finds the finished copy and stops here.
        if root.exists() and _outdated(root):
            shutil.rmtree(root)  # written by an older generator: its content has changed
        return 0.0 if root.exists() else write_dataset(name, root, seed, scale)


def _outdated(root: Path) -> bool:
    marker = root / MARKER
    return marker.is_file() and json.loads(marker.read_text()).get("version") != VERSION


def generate_all(
    parent: Path,
    seed: int = 0,
    names=tuple(SPECS),
    workers: int = 2,
    force: bool = False,
    scale: float = 1.0,
) -> dict[str, float]:
    """Write several synthetic datasets under ``parent`` (one folder each), in parallel.

    Returns:
        dataset name → seconds (0.0 when an identical copy was already there).

    Raises:
        CapstudyError: a folder exists that is not a synthetic dataset of this seed and
            ``force`` is not set.
    """
    todo = []
    for name in names:
        root = parent / name
        if root.exists():
            marker = root / MARKER
            same = marker.is_file() and json.loads(marker.read_text()).get("seed") == seed
            same = same and json.loads(marker.read_text()).get("scale", 1.0) == scale
            if same and not force and not _outdated(root):
                continue
            if not force and not (same and _outdated(root)):
                raise CapstudyError(
                    f"{root} exists and is not synthetic data of seed {seed}; pass --force to "
                    "replace it"
                )
            shutil.rmtree(root)
        todo.append(name)
    times = dict.fromkeys(names, 0.0)
    if workers <= 1 or len(todo) <= 1:
        for name in todo:
            times[name] = _locked_write(name, parent / name, seed, scale)
        return times
    # fork: the children need nothing but numpy and PIL, already imported here.
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx) as pool:
        futures = {n: pool.submit(_locked_write, n, parent / n, seed, scale) for n in todo}
        times.update({n: f.result() for n, f in futures.items()})
    return times
