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
        classes: the detection classes the dataset annotates, in the common label map's
            vocabulary (None: every class of its label map, e.g. COCO or classification).
    """

    name: str
    format: str
    modalities: tuple[str, ...] | None
    classes: tuple[str, ...] | None = None


DATASETS: Mapping[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("flir", "flir_aligned", ("rgb", "ir"), ("person", "car", "bicycle")),
        DatasetInfo("synth_a", "flir_aligned", ("rgb", "ir"), ("person", "car", "bicycle")),
        DatasetInfo("flir_v2", "flir_v2", ("rgb", "ir"), ("person", "car", "bicycle")),
        # LLVIP annotates pedestrians only; synth_b mirrors it (its plaza scenes draw persons).
        DatasetInfo("llvip", "llvip", ("rgb", "ir"), ("person",)),
        DatasetInfo("synth_b", "llvip", ("rgb", "ir"), ("person",)),
        DatasetInfo("coco", "coco", ("rgb",)),
        DatasetInfo("synth_coco", "coco", ("rgb",)),
        DatasetInfo("imagenet", "imagefolder", ("rgb",)),
        DatasetInfo("synth_imagenet", "imagefolder", ("rgb",)),
        DatasetInfo("domainnet", "domainnet", None),
    )
}

# Published split names. ``train`` is the published training split; ``eval`` the published
# validation/test split (FLIR align_validation, LLVIP test, COCO val2017, DomainNet test), used
# only for reporting. The validation subset that selection uses is carved out of ``train``
# (see ``capstudy.data.carve``), so no published evaluation image ever chooses a model.
PUBLISHED_SPLITS = ("train", "eval")
SPLIT_ALIASES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "flir_aligned": {"train": ("align_train",), "eval": ("align_validation",)},
    "flir_v2": {"train": ("train",), "eval": ("val",)},
    "llvip": {"train": ("train",), "eval": ("test",)},
    "coco": {"train": ("train2017",), "eval": ("val2017",)},
    "imagefolder": {"train": ("train",), "eval": ("val",)},
    "domainnet": {"train": ("train",), "eval": ("test",)},
}
# What ``get_split`` serves: the training split without the carved validation subset
# (``train``), that subset (``val``), and the published evaluation split (``eval``).
SPLITS = ("train", "val", "eval")


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


def check_split(split: str, allowed: tuple[str, ...] = PUBLISHED_SPLITS) -> str:
    """Return ``split`` if it is one of ``allowed``, else raise CapstudyError."""
    if split not in allowed:
        raise CapstudyError(f"split must be one of {', '.join(allowed)}, not {split!r}")
    return split


def annotated_classes(
    domain: str, label_classes: tuple[str, ...], overrides: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The classes of ``label_classes`` that ``domain``'s dataset annotates (map order).

    Args:
        domain: ``dataset/modality``.
        label_classes: the label map's classes the trial uses.
        overrides: dataset name -> comma-separated classes, replacing the declaration
            (``TrialConfig.dataset_classes``).

    Raises:
        CapstudyError: an override names a class outside ``label_classes``.
    """
    dataset = parse_domain(domain)[0]
    declared = DATASETS[dataset].classes
    if overrides and dataset in overrides:
        declared = tuple(c.strip() for c in overrides[dataset].split(",") if c.strip())
        unknown = sorted(set(declared) - set(label_classes))
        if unknown or not declared:
            raise CapstudyError(
                f"dataset_classes: {dataset}: {overrides[dataset]!r} must be a comma-separated "
                f"subset of the label map's classes {list(label_classes)}"
            )
    return tuple(c for c in label_classes if declared is None or c in declared)


def shared_classes(
    train_domain: str,
    eval_domain: str,
    label_classes: tuple[str, ...],
    overrides: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """Classes both domains annotate: the set a transfer metric may fairly be scored on.

    A model trained on LLVIP (persons only) never saw a labelled car, so its FLIR car AP
    says nothing about transfer and would drag a FLIR mAP down; FLIR → LLVIP likewise has
    only persons to find. Both directions score on the intersection.
    """
    train = set(annotated_classes(train_domain, label_classes, overrides))
    evaluated = annotated_classes(eval_domain, label_classes, overrides)
    return tuple(c for c in evaluated if c in train)


def eval_class_sets(
    train_domain: str, eval_domains: tuple[str, ...], overrides: Mapping[str, str] | None = None
) -> dict[str, tuple[str, ...]]:
    """The class set each domain's detection metrics are computed on (train domain first).

    The train domain's own entry (its ``val`` subset and published ``eval`` split) is the
    classes it annotates; every other domain's is :func:`shared_classes`. Empty for
    classification and for detection datasets that keep their native classes (COCO).
    """
    from capstudy.data.labels import NATIVE, default_label_map

    if domain_task(train_domain) != "detection":
        return {}
    lmap = default_label_map(parse_domain(train_domain)[0])
    if lmap is NATIVE:
        return {}
    domains = [train_domain, *(d for d in eval_domains if d != train_domain)]
    return {d: shared_classes(train_domain, d, lmap.classes, overrides) for d in domains}


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
