"""Domain names (``dataset/modality``), dataset registry, split names and format detection.

Pure module (stdlib only) so the study schema can validate domain names without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from capstudy import paths
from capstudy.errors import CapstudyError

FORMATS = ("flir_aligned", "flir_v2", "llvip", "coco", "imagefolder", "domainnet")
DETECTION_FORMATS = ("flir_aligned", "flir_v2", "llvip", "coco")
SYNTHETIC = ("synth_a", "synth_b", "synth_coco", "synth_imagenet")


@dataclass(frozen=True)
class DatasetInfo:
    """What the program knows about a dataset name.

    Attributes:
        name: dataset name, the first half of a domain.
        format: on-disk layout read by the loaders (one of ``FORMATS``).
        modalities: modality names accepted after the slash (None: any, e.g. DomainNet domains).
    """

    name: str
    format: str
    modalities: tuple[str, ...] | None


DATASETS: Mapping[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("flir", "flir_aligned", ("rgb", "ir")),
        DatasetInfo("synth_a", "flir_aligned", ("rgb", "ir")),
        DatasetInfo("flir_v2", "flir_v2", ("rgb", "ir")),
        DatasetInfo("llvip", "llvip", ("rgb", "ir")),
        DatasetInfo("synth_b", "llvip", ("rgb", "ir")),
        DatasetInfo("coco", "coco", ("rgb",)),
        DatasetInfo("synth_coco", "coco", ("rgb",)),
        DatasetInfo("imagenet", "imagefolder", ("rgb",)),
        DatasetInfo("synth_imagenet", "imagefolder", ("rgb",)),
        DatasetInfo("domainnet", "domainnet", None),
    )
}

# Published split names → the two names the program uses. Several names may map to one split;
# each reader tries them in order and says which it looked for when none exists.
SPLIT_ALIASES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "flir_aligned": {"train": ("align_train",), "val": ("align_validation",)},
    "flir_v2": {"train": ("train",), "val": ("val",)},
    "llvip": {"train": ("train",), "val": ("test",)},
    "coco": {"train": ("train2017",), "val": ("val2017",)},
    "imagefolder": {"train": ("train",), "val": ("val",)},
    "domainnet": {"train": ("train",), "val": ("test",)},
}


def parse_domain(domain: str) -> tuple[str, str]:
    """Split ``dataset/modality`` and check both halves.

    Args:
        domain: e.g. ``synth_a/ir`` or ``domainnet/sketch``.

    Returns:
        (dataset, modality).

    Raises:
        CapstudyError: malformed name, unknown dataset or modality.
    """
    parts = domain.split("/")
    if len(parts) != 2 or not all(parts):
        raise CapstudyError(f"domain {domain!r} must look like 'dataset/modality', e.g. 'flir/ir'")
    dataset, modality = parts
    info = DATASETS.get(dataset)
    if info is None:
        known = ", ".join(sorted(DATASETS))
        raise CapstudyError(f"unknown dataset {dataset!r} in domain {domain!r}; known: {known}")
    if info.modalities is not None and modality not in info.modalities:
        raise CapstudyError(
            f"dataset {dataset!r} has modalities {', '.join(info.modalities)}, not {modality!r}"
        )
    return dataset, modality


def check_split(split: str) -> str:
    """Return ``split`` if it is ``train`` or ``val``, else raise CapstudyError."""
    if split not in ("train", "val"):
        raise CapstudyError(f"split must be 'train' or 'val', not {split!r}")
    return split


def domain_task(domain: str) -> str:
    """``detection`` or ``classification`` for a domain name."""
    dataset, _ = parse_domain(domain)
    return "detection" if DATASETS[dataset].format in DETECTION_FORMATS else "classification"


def dataset_root(dataset: str, roots: Mapping[str, str] | None = None) -> Path:
    """Folder of a dataset: ``roots[dataset]`` or ``<data_root>/<dataset>``."""
    if roots and dataset in roots:
        return Path(roots[dataset]).expanduser().resolve()
    return paths.data_root() / dataset


def detect_format(root: Path) -> str:
    """Guess the on-disk layout of a dataset folder from marker files.

    Args:
        root: dataset folder.

    Returns:
        one of ``FORMATS``.

    Raises:
        CapstudyError: the folder is missing or matches no known layout.
    """
    if not root.is_dir():
        raise CapstudyError(f"{root}: not a folder")
    if (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir():
        return "flir_aligned"
    if any(root.glob("images_*_train")) or any(root.glob("images_*_val")):
        return "flir_v2"
    if (root / "visible").is_dir() or (root / "infrared").is_dir():
        return "llvip"
    if (root / "annotations").is_dir() and any((root / "annotations").glob("instances_*.json")):
        return "coco"
    if any(root.glob("*_train.txt")) or any(root.glob("*_test.txt")):
        return "domainnet"
    if (root / "train").is_dir() or (root / "val").is_dir():
        return "imagefolder"
    raise CapstudyError(
        f"{root}: cannot tell the dataset format (looked for JPEGImages/+Annotations/, "
        "images_*_train/, visible/ or infrared/, annotations/instances_*.json, "
        "<domain>_train.txt, train/); pass --format"
    )
