"""Images of a published split counted from its listing, for the dry run's cost (pure: stdlib).

No annotation is parsed and no image opened: a split list's lines (FLIR aligned, DomainNet)
or the image files of the split's folders (LLVIP, COCO and FLIR v2, ImageNet's class folders),
so counting costs a listing, and a missing dataset one ``is_dir``. What the readers would
reject (an image without its annotation, say) is still counted: ``capstudy data check`` is
the check, this an estimate's input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from capstudy.data.cocofmt import coco_paths
from capstudy.data.domains import DATASETS, SPLIT_ALIASES, SYNTHETIC, dataset_root, parse_domain
from capstudy.data.voc import IMAGE_SUFFIXES, flir_split_list

# Where the layouts are described (a docs page, named in the dry run's notes).
LAYOUT_PAGE = "docs/guide/data.md"


@dataclass(frozen=True)
class LocalCounts:
    """Published-split image counts of the domains whose data is on this machine.

    Attributes:
        images: domain -> (train images, eval images), counted here.
        published: domains left to the published sizes (their data is not here).
        missing: real dataset -> the folder looked in (absent).
        unlisted: real dataset -> its folder, present but a split could not be listed.
    """

    images: dict[str, tuple[int, int]] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    missing: dict[str, Path] = field(default_factory=dict)
    unlisted: dict[str, Path] = field(default_factory=dict)


def count_split(domain: str, split: str, roots: Mapping[str, str] | None = None) -> int | None:
    """Images of the published ``split`` (``train`` | ``eval``) of ``domain`` here, or None
    when its folder or the split's listing is not there."""
    dataset, modality = parse_domain(domain)
    root = dataset_root(dataset, roots)
    if not root.is_dir():
        return None
    fmt = DATASETS[dataset].format
    (name,) = SPLIT_ALIASES[fmt][split]
    if fmt == "flir_aligned":
        return _lines(flir_split_list(root, split))
    if fmt == "domainnet":
        return _lines(root / f"{modality}_{name}.txt")
    if fmt == "llvip":
        folders = [root / side / name for side in ("visible", "infrared")]
        stems = [_image_stems(f) for f in folders]
        return None if None in stems else len(stems[0] | stems[1])
    if fmt in ("coco", "flir_v2"):
        return _tree_images(coco_paths(fmt, root, split, modality)[1])
    return _tree_images(root / name)  # imagefolder: <split>/<class>/*


def count_domains(domains: Iterable[str], roots: Mapping[str, str] | None = None) -> LocalCounts:
    """:func:`count_split` of both published splits of each domain; a real dataset not here
    is named with the folder it was looked for in (synthetic ones are generated on demand)."""
    out = LocalCounts()
    for domain in sorted(set(domains)):
        dataset = parse_domain(domain)[0]
        counts = (count_split(domain, "train", roots), count_split(domain, "eval", roots))
        if None not in counts:
            out.images[domain] = counts
            continue
        out.published.append(domain)
        root = dataset_root(dataset, roots)
        if dataset in SYNTHETIC:
            continue
        (out.unlisted if root.is_dir() else out.missing)[dataset] = root
    return out


def source_line(counts: LocalCounts) -> str:
    """Which split sizes the estimate used: counted here (train/eval images) or published."""
    parts = []
    if counts.images:
        here = ", ".join(f"{d} {t:,}/{e:,}" for d, (t, e) in counts.images.items())
        parts.append(f"counted in the local data for {here} (train/eval images)")
    if counts.published:
        parts.append(f"published sizes for {', '.join(counts.published)}")
    return f"  split sizes: {'; '.join(parts)}"


def notes(counts: LocalCounts) -> list[str]:
    """A line for each real dataset whose split sizes could not be counted here."""
    lines = [
        f"note: dataset {name!r} not found at {root}: its published sizes stand in "
        f"(layouts: {LAYOUT_PAGE})"
        for name, root in counts.missing.items()
    ]
    lines += [
        f"note: dataset {name!r} at {root}: a split's listing is missing, its published sizes "
        f"stand in (layouts: {LAYOUT_PAGE}; `capstudy data check`)"
        for name, root in counts.unlisted.items()
    ]
    return lines


def _lines(listing: Path | None) -> int | None:
    if listing is None or not listing.is_file():
        return None
    with listing.open() as f:
        return sum(1 for line in f if line.strip())


def _image_stems(folder: Path) -> set[str] | None:
    if not folder.is_dir():
        return None
    with os.scandir(folder) as entries:
        return {
            os.path.splitext(e.name)[0]
            for e in entries
            if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
        }


def _tree_images(folder: Path) -> int | None:
    """Image files anywhere below ``folder`` (None when it is not there)."""
    if not folder.is_dir():
        return None
    n, stack = 0, [str(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.is_dir(follow_symlinks=True):
                    stack.append(e.path)
                elif os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES:
                    n += 1
    return n
