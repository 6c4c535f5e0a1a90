"""The data entry points the training engine uses: splits, class counts, fingerprints."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from capstudy.data.cache import (
    COMPLETE,
    CachedSplit,
    build_entry,
    cache_key,
    entry_dir,
    open_entry,
)
from capstudy.data.carve import carve_spec, carved_fingerprint, sample_id, val_positions
from capstudy.data.cocofmt import coco_paths
from capstudy.data.domains import (
    DATASETS,
    SPLITS,
    SYNTHETIC,
    check_split,
    dataset_root,
    domain_task,
    parse_domain,
)
from capstudy.data.fingerprints import cached_source_fingerprint
from capstudy.data.index import SplitIndex, finalize, raise_on_errors
from capstudy.data.labels import NATIVE, LabelMap, default_label_map
from capstudy.data.readers import read_raw
from capstudy.errors import CapstudyError
from capstudy.util import file_lock

log = logging.getLogger("capstudy.data")


def ensure_dataset(dataset: str, roots: Mapping[str, str] | None = None) -> Path:
    """The dataset's folder; a missing synthetic dataset is generated first (seed 0).

    Raises:
        CapstudyError: a real dataset's folder does not exist.
    """
    root = dataset_root(dataset, roots)
    if dataset in SYNTHETIC and not root.exists():
        from capstudy.data.synth import ensure_synthetic

        # $CAPSTUDY_SYNTH_SCALE shrinks on-demand synthetic data for tests and smoke runs.
        scale = float(os.environ.get("CAPSTUDY_SYNTH_SCALE", "1"))
        ensure_synthetic(dataset, root, seed=0, scale=scale)
    if not root.is_dir():
        raise CapstudyError(
            f"dataset {dataset!r} not found at {root}: put it there, set CAPSTUDY_DATA, or "
            f"name its folder in the study file's data section ({dataset}: /path/to/{dataset}; "
            "layouts: docs/guide/data.md)"
        )
    return root


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    wh = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(wh) < 8:
        raise CapstudyError(f"image size {size!r} is too small (at least 8 pixels a side)")
    return wh


def get_split(
    domain: str,
    split: str,
    size: int | tuple[int, int],
    *,
    roots: Mapping[str, str] | None = None,
    label_map: LabelMap | None = None,
    val_fraction: float = 0.0,
) -> CachedSplit:
    """Open (building on first use) the decoded, resized cache of one split.

    Args:
        domain: ``dataset/modality``, e.g. ``synth_a/ir``.
        split: ``train`` (the published training split, less the validation subset when
            ``val_fraction`` > 0), ``val`` (that subset, carved from the training split; see
            ``capstudy.data.carve``) or ``eval`` (the published validation/test split:
            FLIR ``align_validation``, LLVIP ``test``, COCO ``val2017``; reporting only).
        size: square side, or (width, height).
        roots: dataset name → folder; default ``<data_root>/<dataset>``.
        label_map: detection class set; default per dataset (see ``labels``).
        val_fraction: share of the training split held out as ``val`` (0: none).

    Returns:
        the CachedSplit, whose arrays are read-only memmaps shared across processes.

    Raises:
        CapstudyError: unknown domain, missing dataset, errors in its files (named), or
            ``val`` asked for without a ``val_fraction``.
    """
    dataset, modality = parse_domain(domain)
    check_split(split, SPLITS)
    if split == "val" and val_fraction <= 0:
        raise CapstudyError(f"{domain}: the 'val' split is carved from 'train': set val_fraction")
    wh = _size(size)
    root = ensure_dataset(dataset, roots)
    fmt = DATASETS[dataset].format
    lmap = label_map or default_label_map(dataset)
    source = "eval" if split == "eval" else "train"
    carved = split != "eval" and val_fraction > 0
    spec = carve_spec(split, val_fraction) if carved else "whole"
    key = cache_key(
        cached_source_fingerprint(fmt, root, source, modality), wh, f"{lmap.key()}|{spec}"
    )
    label = f"{split}{val_fraction:g}" if carved else source
    folder = entry_dir(dataset, modality, label, wh, key)
    if not (folder / COMPLETE).is_file():
        with file_lock(folder.parent / f".{folder.name}.lock"):
            if not (folder / COMPLETE).is_file():  # another process may have built it meanwhile
                index = finalize(read_raw(fmt, root, source, modality), lmap)
                raise_on_errors(index.problems, f"{domain} {source} ({root})")
                if carved:
                    index = _carve(index, split, val_fraction, domain)
                if not index.samples:
                    raise CapstudyError(f"{domain} {split}: no samples found in {root}")
                _log_counts(domain, split, index)
                log.info("building cache %s (%d images)", folder, len(index.samples))
                build_entry(folder, index, wh, key)
    return open_entry(folder, domain, split)


def _carve(index: SplitIndex, part: str, fraction: float, domain: str) -> SplitIndex:
    """One side of the validation carve of a training split's index."""
    try:
        held = val_positions([sample_id(s.image) for s in index.samples], fraction)
    except CapstudyError as exc:
        raise CapstudyError(f"{domain} train: {exc}") from None
    keep = [s for i, s in enumerate(index.samples) if (i in held) == (part == "val")]
    return dataclasses.replace(index, samples=keep)


def _log_counts(domain: str, split: str, index: SplitIndex) -> None:
    # Nothing is skipped silently: unmapped classes and fixed boxes are counted and said.
    for name, n in sorted(index.unmapped.items()):
        log.warning("%s %s: %d object(s) of class %r not in the label map", domain, split, n, name)
    if index.fixed_boxes or index.dropped_boxes:
        log.warning(
            "%s %s: %d box(es) clipped to the image, %d degenerate box(es) dropped",
            domain,
            split,
            index.fixed_boxes,
            index.dropped_boxes,
        )


def num_classes(
    domain: str, roots: Mapping[str, str] | None = None, label_map: LabelMap | None = None
) -> int:
    """Number of classes K (detection labels are 1..K; classification targets 0..K-1)."""
    return len(class_names(domain, roots, label_map))


def class_names(
    domain: str, roots: Mapping[str, str] | None = None, label_map: LabelMap | None = None
) -> tuple[str, ...]:
    """Class names of a domain without building its cache."""
    dataset, modality = parse_domain(domain)
    fmt = DATASETS[dataset].format
    lmap = label_map or default_label_map(dataset)
    if domain_task(domain) == "detection" and lmap is not NATIVE:
        return lmap.classes
    root = ensure_dataset(dataset, roots)
    if fmt == "coco":
        # The val file is ~20x smaller than train and lists the same categories.
        for split in ("eval", "train"):
            ann, _ = coco_paths(fmt, root, split, modality)
            if ann.is_file():
                cats = json.loads(ann.read_text())["categories"]
                return tuple(str(c["name"]) for c in sorted(cats, key=lambda c: int(c["id"])))
        raise CapstudyError(f"{root}: no annotations/instances_*.json")
    if fmt == "imagefolder":
        for name in ("train", "val"):
            if (root / name).is_dir():
                return tuple(sorted(d.name for d in (root / name).iterdir() if d.is_dir()))
        raise CapstudyError(f"{root}: no train/ or val/ class folders")
    raw = read_raw(fmt, root, "train", modality)
    if not raw.categories:
        raise_on_errors(raw.problems, domain)
    return raw.categories


def dataset_fingerprint(
    domain: str, split: str, roots: Mapping[str, str] | None = None, val_fraction: float = 0.0
) -> str:
    """Cheap fingerprint of a split's source files (names, sizes, label files; no decoding).

    ``train`` and ``val`` with a ``val_fraction`` name the two sides of the carve (the
    training split's files plus the carve rule and fraction); ``eval`` the published split.
    """
    dataset, modality = parse_domain(domain)
    check_split(split, SPLITS)
    root = ensure_dataset(dataset, roots)
    source = "eval" if split == "eval" else "train"
    fp = cached_source_fingerprint(DATASETS[dataset].format, root, source, modality)
    if split != "eval" and val_fraction > 0:
        return carved_fingerprint(fp, split, val_fraction)
    return fp
