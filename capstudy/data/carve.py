"""The held-out validation subset: a fixed, deterministic carve of each training split.

Selection (ASHA, the best trial of a cell, the analysis's choice) must never see an image that
a reported number is computed on, so the validation subset comes out of the published
*training* split, and the published validation/test split (``eval``) is only reported.

The carve depends on the images alone, never on a trial's seed: every image gets an id that is
the same in every modality of a paired dataset (``JPEGImages/FLIR_00001`` for both
``FLIR_00001_RGB.jpg`` and ``FLIR_00001_PreviewData.jpeg``; ``train/010001`` for LLVIP's
visible and infrared frames), the ids are ranked by their SHA-256, and the first
``round(n * fraction)`` of that ranking are the validation subset. So every trial of a study
(every seed, init and capacity) trains and selects on the same images, an RGB and a thermal
trial on one dataset hold out the same scenes, and adding images to a dataset moves only the
images whose rank it changes. Pure module (stdlib only).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import PurePath

from capstudy.errors import CapstudyError

# Named in cache keys and fingerprints: change it whenever the rule below changes.
CARVE_RULE = "sha256-rank-v1"
# Suffixes that name a FLIR aligned image's modality; stripped so both modalities share an id.
_MODALITY_SUFFIXES = ("_PreviewData", "_RGB")


def sample_id(image: PurePath) -> str:
    """The modality-independent id of an image: ``<parent folder>/<stem>``.

    The parent keeps ImageNet/DomainNet class folders apart (their file stems may repeat
    across classes); for LLVIP both modalities live in a folder named after the split.
    """
    stem = image.stem
    for suffix in _MODALITY_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return f"{image.parent.name}/{stem}"


def val_count(n: int, fraction: float) -> int:
    """How many of ``n`` training images the validation subset takes.

    Raises:
        CapstudyError: the fraction is outside (0, 0.5], or the split is too small to leave
            at least one image on each side.
    """
    if not 0 < fraction <= 0.5:
        raise CapstudyError(f"val_fraction={fraction!r} must be in (0, 0.5]")
    if n < 2:
        raise CapstudyError(
            f"a training split of {n} image(s) cannot give up a validation subset "
            "(val_fraction needs at least 2 images)"
        )
    # At least one image each side: a tiny test split still has a val set and a train set.
    return min(n - 1, max(1, round(n * fraction)))


def val_positions(ids: Sequence[str], fraction: float) -> set[int]:
    """Positions in ``ids`` of the images that form the validation subset."""
    rank = sorted(range(len(ids)), key=lambda i: hashlib.sha256(ids[i].encode()).digest())
    return set(rank[: val_count(len(ids), fraction)])


def carve_spec(part: str, fraction: float) -> str:
    """A string naming one side of a carve, for cache keys and fingerprints."""
    return f"{CARVE_RULE}:{part}:{fraction!r}"


def carved_fingerprint(train_fingerprint: str, part: str, fraction: float) -> str:
    """Fingerprint of one side of the carve: the train split's sources + the carve rule.

    The carve is a function of the training split's files and the fraction, so this hash
    names the exact image set without decoding or even parsing anything.
    """
    text = f"{train_fingerprint}|{carve_spec(part, fraction)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
