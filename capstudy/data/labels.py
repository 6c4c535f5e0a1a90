"""Label maps: how each detection dataset's own category names map onto one class set.

A study trains on one domain and evaluates on others (FLIR RGB → LLVIP thermal, synth_a →
synth_b), so every detection dataset must speak the same class vocabulary. The default common
set is ``("person", "car", "bicycle")``; source names map to it through aliases (FLIR calls
bicycles ``bike`` in v2 and ``bicycle`` in the aligned release). Names outside the map are not
silently lost: the readers count them per name and the loader reports the counts.

Pretraining datasets (COCO and its synthetic proxy) keep their own full category list by
default (``NATIVE``), because a detector pretrained on three classes would be a weaker proxy
for COCO pretraining; the head is re-initialised for the downstream class set anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_CLASSES: tuple[str, ...] = ("person", "car", "bicycle")

# Aliases seen in the published releases: FLIR v2 uses "bike", some VOC conversions use
# capitalised or plural names. Keys are lower-cased source names.
DEFAULT_ALIASES: Mapping[str, str] = {
    "person": "person",
    "people": "person",
    "pedestrian": "person",
    "car": "car",
    "cars": "car",
    "bicycle": "bicycle",
    "bike": "bicycle",
    "bicycles": "bicycle",
}


@dataclass(frozen=True)
class LabelMap:
    """Maps source category names to a common class set.

    Attributes:
        classes: the common class names; label ``i + 1`` is ``classes[i]`` (0 is background).
        aliases: lower-cased source name → common class name. A class name maps to itself even
            when it is not listed.
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALIASES))

    def __post_init__(self) -> None:
        bad = {v for v in self.aliases.values() if v not in self.classes}
        if bad:
            raise ValueError(f"label map aliases point outside its classes: {sorted(bad)}")

    def label(self, source_name: str) -> int | None:
        """Label in 1..K for a source category name, or None when it is outside the map."""
        key = source_name.strip().lower()
        target = self.aliases.get(key, key)
        if target in self.classes:
            return self.classes.index(target) + 1
        return None

    def key(self) -> str:
        """A stable string for cache keys: the classes and the alias table."""
        pairs = ",".join(f"{k}={v}" for k, v in sorted(self.aliases.items()))
        return "|".join(self.classes) + "#" + pairs


# Sentinel: keep the dataset's own category list (sorted by category id).
NATIVE = LabelMap(classes=(), aliases={})

DEFAULT_LABEL_MAP = LabelMap()

# Which datasets keep their own categories by default (detection pretraining sources).
_NATIVE_DATASETS = {"coco", "synth_coco"}


def default_label_map(dataset: str) -> LabelMap:
    """The label map a detection dataset uses unless the caller passes one.

    Args:
        dataset: dataset name (``flir``, ``synth_a``, ``coco`` …).

    Returns:
        ``NATIVE`` for COCO-style pretraining sources, the common map otherwise.
    """
    return NATIVE if dataset in _NATIVE_DATASETS else DEFAULT_LABEL_MAP
