"""The split index every reader produces, label mapping, box checks and fingerprints.

Readers (``voc``, ``cocofmt``, ``folders``) only parse the layout: they return a ``RawIndex``
of samples with their source category names and the structural problems they met (missing
files, unparsable annotations, unpaired modalities). ``finalize`` applies a label map and checks
boxes, so ``capstudy data check`` and the loaders judge a dataset by the same rules.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from capstudy.data.labels import NATIVE, LabelMap
from capstudy.errors import CapstudyError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset file; ``error`` blocks loading, ``warning`` is reported."""

    path: str
    message: str
    severity: str = "error"
    kind: str = "file"  # file | box | class: lets `data check` judge box problems strictly

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass
class RawSample:
    """One image as a reader found it.

    Attributes:
        image: image file of the requested modality.
        source: annotation file (or list file) to name in messages.
        ann_size: (width, height) the annotation claims, if it says.
        objects: (source name, x1, y1, x2, y2) in source pixels, x2/y2 exclusive edges.
        class_index: classification label in 0..K-1.
        pair: the other modality's image for paired datasets (checked by ``data check``).
        ignore: one flag per object, true for ignore regions (VOC ``<difficult>``, COCO
            ``iscrowd``); empty means none are.
    """

    image: Path
    source: Path | None = None
    ann_size: tuple[int, int] | None = None
    objects: list[tuple[str, float, float, float, float]] = field(default_factory=list)
    class_index: int | None = None
    pair: Path | None = None
    ignore: list[bool] = field(default_factory=list)


@dataclass
class RawIndex:
    """A reader's result for one (dataset, split, modality)."""

    task: str
    samples: list[RawSample]
    problems: list[Problem]
    categories: tuple[str, ...] = ()  # native class names (COCO order, class folders)
    sources: list[Path] = field(default_factory=list)  # every file the split depends on


@dataclass
class Sample:
    """A sample ready for caching: boxes in source pixels, labels in 1..K.

    ``ignore`` flags the boxes that are ignore regions in evaluation (empty: none).
    """

    image: Path
    ann_size: tuple[int, int] | None
    boxes: list[tuple[float, float, float, float]]
    labels: list[int]
    target: int = -1
    ignore: list[bool] = field(default_factory=list)


@dataclass
class SplitIndex:
    """The checked, label-mapped sample list of one split."""

    task: str
    class_names: tuple[str, ...]
    samples: list[Sample]
    problems: list[Problem]
    unmapped: Counter[str]
    fixed_boxes: int = 0
    dropped_boxes: int = 0
    border_boxes: int = 0


# How far (pixels) a box may cross the image edge and still count as touching it. Converters
# of FLIR and LLVIP often write 0-based VOC corners, so a box at the left or top border reads
# as starting at -1 after the 1-based shift; that is a convention, not an annotation error.
BORDER_SLACK = 1.0


def check_box(
    box: tuple[float, float, float, float], size: tuple[int, int] | None
) -> tuple[str | None, tuple[float, float, float, float] | None]:
    """Judge one box against its image size.

    Returns:
        (message or None, the box to keep or None). Boxes within ``BORDER_SLACK`` of the
        image are clipped without a message (``finalize`` counts them); boxes further out
        are clipped with a message; boxes that are degenerate (before or after clipping)
        are dropped.
    """
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return f"degenerate box {_fmt(box)}", None
    if size is None:
        return None, box
    w, h = size
    clipped = (max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2))
    s = BORDER_SLACK
    if x1 < -s or y1 < -s or x2 > w + s or y2 > h + s:
        if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
            return f"box {_fmt(box)} lies outside the {w}x{h} image", None
        return f"box {_fmt(box)} out of bounds of the {w}x{h} image (clipped)", clipped
    return None, clipped


def _crosses_border(box: tuple[float, ...], size: tuple[int, int] | None) -> bool:
    # Beyond VOC's exact edge (x1 = 0, x2 = w) but within the slack: clipped, counted.
    return size is not None and (min(box[0], box[1]) < 0 or box[2] > size[0] or box[3] > size[1])


def _fmt(box: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"


def finalize(raw: RawIndex, label_map: LabelMap) -> SplitIndex:
    """Apply a label map and check boxes.

    Box problems become warnings (the box is clipped or dropped, and counted): real
    annotations have a few, and refusing a whole dataset for them would help nobody.
    ``data check`` reports the same warnings (as errors, except boxes at the border).
    """
    problems = list(raw.problems)
    if raw.task == "classification":
        samples = [Sample(s.image, s.ann_size, [], [], s.class_index or 0) for s in raw.samples]
        return SplitIndex(raw.task, raw.categories, samples, problems, Counter())
    lmap = LabelMap(raw.categories, {}) if label_map is NATIVE else label_map
    unmapped: Counter[str] = Counter()
    out, fixed, dropped, border = [], 0, 0, 0
    for s in raw.samples:
        sample = Sample(s.image, s.ann_size, [], [])
        # VOC: name the XML to fix; COCO: the image (its JSON is one file for all images).
        where = str(s.source) if s.source and s.source.suffix == ".xml" else str(s.image)
        flags = s.ignore or [False] * len(s.objects)
        for (name, *coords), ignored in zip(s.objects, flags, strict=True):
            label = lmap.label(name)
            if label is None:
                unmapped[name] += 1
                continue
            msg, kept = check_box(tuple(coords), s.ann_size)  # type: ignore[arg-type]
            if msg:
                problems.append(Problem(where, msg, "warning", "box"))
                fixed += kept is not None
                dropped += kept is None
            elif _crosses_border(tuple(coords), s.ann_size):
                border += 1
            if kept is not None:
                sample.boxes.append(kept)
                sample.labels.append(label)
                sample.ignore.append(bool(ignored))
        out.append(sample)
    problems += _dataset_warnings(raw, lmap, unmapped, border)
    index = SplitIndex(raw.task, lmap.classes, out, problems, unmapped, fixed + border, dropped)
    index.border_boxes = border
    return index


def _dataset_warnings(
    raw: RawIndex, lmap: LabelMap, unmapped: Counter[str], border: int
) -> list[Problem]:
    where = raw_root_name(raw)
    found = [
        Problem(
            where,
            f"{n} object(s) of class {name!r} outside the label map "
            f"{list(lmap.classes)} (not used)",
            "warning",
            "class",
        )
        for name, n in sorted(unmapped.items())
    ]
    if border:
        msg = (
            f"{border} box(es) up to {BORDER_SLACK:g} px outside the image clipped to it "
            "(0-based VOC corners at the border read this way; not an error)"
        )
        found.append(Problem(where, msg, "warning", "border"))
    return found


def raw_root_name(raw: RawIndex) -> str:
    """A path to name for dataset-wide messages (the first source file's folder)."""
    return str(raw.sources[0].parent) if raw.sources else "<dataset>"


def raise_on_errors(problems: list[Problem], what: str) -> None:
    """Raise CapstudyError listing the first errors (and how many more), if any."""
    errors = [p for p in problems if p.severity == "error"]
    if not errors:
        return
    shown = "\n  ".join(str(p) for p in errors[:10])
    more = f"\n  … and {len(errors) - 10} more" if len(errors) > 10 else ""
    raise CapstudyError(
        f"{what}: {len(errors)} error(s) in the dataset files:\n  {shown}{more}\n"
        "run `capstudy data check <root>` for the full report"
    )


def fingerprint_files(files: Iterable[Path], content: Callable[[Path], bool]) -> str:
    """Hash a split's file list cheaply.

    Images contribute their relative name and size, annotation/list files (``content`` true)
    their bytes. Sizes rather than mtimes: the synthetic benchmark is regenerated byte-for-byte
    on each node, and a copy of a dataset should keep its fingerprint, while mtimes change on
    every copy. Re-encoding an image changes its size in practice; labels are hashed in full.
    """
    h = hashlib.sha256()
    for f in sorted(set(files)):
        try:
            st = f.stat()
        except OSError:
            h.update(f"{f.name}:missing\n".encode())
            continue
        h.update(f"{f.parent.name}/{f.name}:{st.st_size}\n".encode())
        if content(f):
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]
