"""Datasets: readers for the published layouts, the synthetic benchmark, the decoded cache.

Public surface used by the training engine::

    from capstudy.data import get_split, BatchLoader, num_classes, domain_task
    split = get_split("synth_a/ir", "train", (320, 256))
    for images, targets in BatchLoader(split, 16, shuffle=True, seed=0, augment=True):
        ...

Importing this package imports nothing heavy: each name loads its module on first use (numpy
and PIL with the readers and cache, torch with ``BatchLoader``/``Augment``). The pure parts
(domain names, label maps) are ``capstudy.data.domains`` and ``capstudy.data.labels``.
"""

from __future__ import annotations

# Everything loads on first use (PEP 562): the pure parts (``capstudy.data.domains``,
# ``capstudy.data.labels``) are imported by the study compiler, which must not pull in numpy
# and PIL through this package's __init__; the loader pulls in torch.
_WHERE = {
    "class_names": "api",
    "dataset_fingerprint": "api",
    "ensure_dataset": "api",
    "get_split": "api",
    "num_classes": "api",
    "CachedSplit": "cache",
    "DATASETS": "domains",
    "domain_task": "domains",
    "parse_domain": "domains",
    "DEFAULT_CLASSES": "labels",
    "DEFAULT_LABEL_MAP": "labels",
    "NATIVE": "labels",
    "LabelMap": "labels",
    "Augment": "loader",
    "BatchLoader": "loader",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"capstudy.data.{_WHERE[name]}"), name)
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
