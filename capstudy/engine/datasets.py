"""The splits one trial reads: train split, validation splits, class names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from capstudy.config import TrialConfig
from capstudy.errors import CapstudyError

# Seed of the fixed subset drawn by max_train_images/max_eval_images. Not the trial seed:
# every trial of a study (every seed, every init) must see the same images, or seed-to-seed
# variation would mix data variation into what is meant to be initialisation variation.
SUBSET_SEED = 0


def subset(split, n: int):
    """The first ``n`` images of a fixed shuffle of ``split`` (all when ``n <= 0``).

    Shuffled rather than the first ``n`` files: class-per-folder data is sorted by class,
    so its first files would all be one class. The chosen images are copied into memory.
    """
    if n <= 0 or n >= len(split):
        return split
    idx = np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(split))[:n])
    changes = {"images": np.ascontiguousarray(split.images[idx])}
    if split.targets is not None:
        changes["targets"] = np.asarray(split.targets)[idx]
    if split.boxes:
        changes["boxes"] = [split.boxes[i] for i in idx]
        changes["labels"] = [split.labels[i] for i in idx]
    if split.ignore_boxes:
        changes["ignore_boxes"] = [split.ignore_boxes[i] for i in idx]
        changes["ignore_labels"] = [split.ignore_labels[i] for i in idx]
    changes["rows"] = idx if split.rows is None else np.asarray(split.rows)[idx]
    return dataclasses.replace(split, **changes)


@dataclass
class TrialData:
    """The splits one trial reads.

    Attributes:
        train: Train split of ``config.train_domain`` less its validation subset (capped by
            ``max_train_images``).
        val: The validation subset carved from that training split (``val/*``: selection).
        evals: Domain -> its published evaluation split (``eval/<domain>/*``: reporting),
            the train domain's first (each capped by ``max_eval_images``).
        class_names: The K class names shared by all of them.
        fingerprint: Fingerprint of the train split's source files (tracking tag).
        class_sets: Domain -> the classes its detection metrics are computed on (classes
            both it and the train domain annotate); empty for classification.
    """

    train: object
    val: object
    evals: dict[str, object]
    class_names: tuple[str, ...]
    fingerprint: str
    class_sets: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """K."""
        return len(self.class_names)


def open_trial_data(config: TrialConfig) -> TrialData:
    """Open (building caches on first use) every split a trial needs.

    Raises:
        CapstudyError: a domain whose task is not ``config.task``, or evaluation domains
            whose classes differ from the train domain's (metrics would compare unlike
            label spaces).
    """
    from capstudy.data import domain_task, get_split

    roots = dict(config.data_roots)
    domains = [config.train_domain, *(d for d in config.eval_domains if d != config.train_domain)]
    for domain in domains:
        if domain_task(domain) != config.task:
            raise CapstudyError(
                f"domain {domain!r} is a {domain_task(domain)} dataset but the trial's task is "
                f"{config.task!r}: set task: {domain_task(domain)} or pick another domain"
            )
    size, vf = config.input_size, config.val_fraction
    train = get_split(config.train_domain, "train", size, roots=roots, val_fraction=vf)
    train = subset(train, config.max_train_images)
    val = get_split(config.train_domain, "val", size, roots=roots, val_fraction=vf)
    val = subset(val, config.max_eval_images)
    evals = {
        d: subset(get_split(d, "eval", size, roots=roots), config.max_eval_images) for d in domains
    }
    names = tuple(train.class_names)
    for domain, split in evals.items():
        if tuple(split.class_names) != names:
            raise CapstudyError(
                f"eval domain {domain!r} has classes {list(split.class_names)} but the train "
                f"domain {config.train_domain!r} has {list(names)}; evaluate on domains that "
                "share a label map"
            )
    from capstudy.data.domains import DATASETS, shared_classes

    sets = {}
    overrides = dict(config.dataset_classes)
    unknown = sorted(set(overrides) - set(DATASETS))
    if unknown:
        raise CapstudyError(f"dataset_classes names unknown dataset(s) {unknown}")
    if config.task == "detection":
        sets = {d: shared_classes(config.train_domain, d, names, overrides) for d in domains}
    return TrialData(train, val, evals, names, train.fingerprint, sets)
