"""Readers for classification layouts: ImageNet-style class folders and DomainNet lists.

ImageNet (class-per-folder)::

    <root>/train/<class>/*.JPEG
    <root>/val/<class>/*.JPEG          (val sorted into class folders, as ``valprep.sh`` does)

Classes are the sorted folder names of ``train/`` (``val/`` when ``train/`` is absent), so
both splits share one numbering.

DomainNet::

    <root>/<domain>/<class>/<domain>_<n>_<m>.jpg
    <root>/<domain>_train.txt, <domain>_test.txt     lines ``<domain>/<class>/<file> <label>``
"""

from __future__ import annotations

from pathlib import Path

from capstudy.data.domains import SPLIT_ALIASES
from capstudy.data.index import Problem, RawIndex, RawSample
from capstudy.data.voc import IMAGE_SUFFIXES


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def read_imagefolder(root: Path, split: str, modality: str, parse: bool = True) -> RawIndex:
    """Index one split of a class-per-folder dataset."""
    (name,) = SPLIT_ALIASES["imagefolder"][split]
    folder = root / name
    if not folder.is_dir():
        return RawIndex("classification", [], [Problem(str(folder), "missing split folder")])
    reference = root / "train" if (root / "train").is_dir() else folder
    classes = tuple(d.name for d in _class_dirs(reference))
    index = {c: i for i, c in enumerate(classes)}
    samples, problems, sources = [], [], []
    others = 0
    for d in _class_dirs(folder):
        if d.name not in index:
            problems.append(Problem(str(d), f"class folder not present in {reference}"))
            continue
        files = sorted(p for p in d.iterdir() if p.is_file())
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        others += len(files) - len(images)
        if not images:
            problems.append(Problem(str(d), "class folder holds no images", "warning"))
        sources += images
        samples += [RawSample(p, class_index=index[d.name]) for p in images]
    if others:
        problems.append(Problem(str(folder), f"{others} non-image file(s) ignored", "warning"))
    if not classes:
        problems.append(Problem(str(reference), "no class folders"))
    return RawIndex("classification", samples, problems, classes, sources)


def read_domainnet(root: Path, split: str, modality: str, parse: bool = True) -> RawIndex:
    """Index one split of one DomainNet domain (``modality`` is the domain, e.g. sketch)."""
    lists = {s: root / f"{modality}_{a[0]}.txt" for s, a in SPLIT_ALIASES["domainnet"].items()}
    listing = lists[split]
    if not listing.is_file():
        return RawIndex("classification", [], [Problem(str(listing), "missing split list")])
    names: dict[int, str] = {}
    problems: list[Problem] = []
    # Both lists name classes, so train and test agree on the numbering even when a class
    # happens to be absent from one of them.
    for path in lists.values():
        if path.is_file():
            _parse_list(path, names, problems, collect_only=True)
    samples = _parse_list(listing, names, problems, collect_only=False)
    k = max(names, default=-1) + 1
    classes = tuple(names.get(i, f"class_{i}") for i in range(k))
    return RawIndex(
        "classification", samples, problems, classes, [listing, *(s.image for s in samples)]
    )


def _parse_list(
    listing: Path, names: dict[int, str], problems: list[Problem], collect_only: bool
) -> list[RawSample]:
    root = listing.parent
    samples = []
    for n, line in enumerate(listing.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{listing}:{n}"
        try:
            rel, label = parts[0], int(parts[1])
        except (IndexError, ValueError):
            if not collect_only:
                problems.append(Problem(where, f"expected '<path> <label>', got {line!r}"))
            continue
        cls = Path(rel).parent.name
        if collect_only:
            names.setdefault(label, cls)
            continue
        if names.get(label, cls) != cls:
            problems.append(Problem(where, f"label {label} is {names[label]!r} elsewhere"))
        image = root / rel
        if not image.is_file():
            problems.append(Problem(str(image), f"missing image (listed in {where})"))
            continue
        samples.append(RawSample(image, listing, class_index=label))
    return samples
