"""Datasets: readers for the published layouts, the synthetic benchmark, the decoded cache.

Public surface used by the training engine::

    from capstudy.data import get_split, BatchLoader, num_classes, domain_task
    split = get_split("synth_a/ir", "train", (320, 256))
    for images, targets in BatchLoader(split, 16, shuffle=True, seed=0, augment=True):
        ...

Importing this package imports numpy and PIL; torch is imported when ``BatchLoader`` or
``Augment`` is first used. The pure parts (domain names, label maps) are
``capstudy.data.domains`` and ``capstudy.data.labels`` (stdlib only).
"""

from __future__ import annotations

from capstudy.data.api import (
    class_names,
    dataset_fingerprint,
    ensure_dataset,
    get_split,
    num_classes,
)
from capstudy.data.cache import CachedSplit
from capstudy.data.domains import DATASETS, domain_task, parse_domain
from capstudy.data.labels import DEFAULT_CLASSES, DEFAULT_LABEL_MAP, NATIVE, LabelMap

_LAZY = {"Augment", "BatchLoader"}


def __getattr__(name: str):
    # The loader imports torch; `capstudy data synth|check` never need it, so it loads on use.
    if name in _LAZY:
        from capstudy.data import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'capstudy.data' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "DEFAULT_CLASSES",
    "DEFAULT_LABEL_MAP",
    "NATIVE",
    "Augment",
    "BatchLoader",
    "CachedSplit",
    "LabelMap",
    "class_names",
    "dataset_fingerprint",
    "domain_task",
    "ensure_dataset",
    "get_split",
    "num_classes",
    "parse_domain",
]
