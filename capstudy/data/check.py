"""``capstudy data check``: judge a dataset folder by the rules the loaders use, plus decoding.

The readers find structural problems (missing files, unparsable annotations, unpaired
modalities, missing split lists); ``finalize`` finds box and class problems; this module adds
a full decode of every image (truncated or unreadable files) and a size check against the
annotation. Box problems are errors here, though the loaders clip or drop such boxes and carry
on: ``check`` says what is wrong with the files, the loaders keep a run going and count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from capstudy.data.domains import DETECTION_FORMATS, FORMATS, detect_format
from capstudy.data.imageio import verify_image
from capstudy.data.index import Problem, finalize
from capstudy.data.labels import DEFAULT_LABEL_MAP, NATIVE, LabelMap
from capstudy.data.readers import read_raw
from capstudy.errors import CapstudyError


@dataclass
class PartSummary:
    """Counts for one (split, modality) of a dataset."""

    split: str
    modality: str
    images: int = 0
    objects: int = 0
    classes: int = 0


@dataclass
class CheckReport:
    """Everything ``data check`` found."""

    root: Path
    format: str
    parts: list[PartSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that make the dataset unusable as it is."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems the loaders work around (and report)."""
        return [p for p in self.problems if p.severity == "warning"]


def modalities_of(fmt: str, root: Path) -> tuple[str, ...]:
    """Modalities a folder of format ``fmt`` holds (DomainNet: its domains' list files)."""
    if fmt in ("flir_aligned", "flir_v2", "llvip"):
        return ("rgb", "ir")
    if fmt == "domainnet":
        names = {p.name.rsplit("_", 1)[0] for p in root.glob("*_train.txt")}
        names |= {p.name.rsplit("_", 1)[0] for p in root.glob("*_test.txt")}
        return tuple(sorted(names))
    return ("rgb",)


def check_dataset(
    root: Path,
    fmt: str | None = None,
    label_map: LabelMap | None = None,
    decode: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Check every split and modality of the dataset at ``root``.

    Args:
        root: dataset folder.
        fmt: one of ``FORMATS``; detected from the layout when None.
        label_map: detection class map (default: the common map, COCO keeps its own classes).
        decode: fully decode every image (finds truncated files; the slow part).
        progress: called with (images done, images total) while decoding.

    Returns:
        the report; ``report.errors`` empty means the loaders will accept the dataset.
    """
    root = Path(root)
    fmt = fmt or detect_format(root)
    if fmt not in FORMATS:
        raise CapstudyError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if label_map is None:
        label_map = NATIVE if fmt == "coco" else DEFAULT_LABEL_MAP
    report = CheckReport(root, fmt)
    seen: set[tuple[str, str]] = set()
    images: dict[Path, tuple[int, int] | None] = {}
    for split in ("train", "eval"):
        for modality in modalities_of(fmt, root):
            index = finalize(read_raw(fmt, root, split, modality), label_map)
            part = PartSummary(split, modality, images=len(index.samples))
            part.objects = sum(len(s.boxes) for s in index.samples)
            part.classes = len(index.class_names)
            report.parts.append(part)
            for p in index.problems:
                if p.kind == "box":  # strict here (border clips are not); see module doc
                    p = Problem(p.path, p.message, "error", p.kind)
                if (p.path, p.message) not in seen:
                    seen.add((p.path, p.message))
                    report.problems.append(p)
            images.update({s.image: s.ann_size for s in index.samples})
    if decode:
        report.problems += _decode_all(images, progress)
    if fmt in DETECTION_FORMATS and not any(p.objects for p in report.parts):
        report.problems.append(Problem(str(root), "no objects of any mapped class", "warning"))
    return report


def _decode_all(
    images: dict[Path, tuple[int, int] | None], progress: Callable[[int, int], None] | None
) -> list[Problem]:
    problems = []
    for i, (path, ann_size) in enumerate(sorted(images.items())):
        size, error = verify_image(path)
        if error:
            problems.append(Problem(str(path), error))
        elif ann_size and size != ann_size:
            # Boxes are scaled by the annotation's size, so a mismatch is survivable but odd.
            msg = (
                f"image is {size[0]}x{size[1]} but its annotation says {ann_size[0]}x{ann_size[1]}"
            )
            problems.append(Problem(str(path), msg, "warning"))
        if progress:
            progress(i + 1, len(images))
    return problems
