"""Variants of the registered backbone families, as data (pure module).

A variant is ``(family, phi, preset)``; its paper label (``B-4``, ``S-2``) is data derived
here, never a name used in code. Families (builders, label prefixes, phi ranges, divisor
rules) live in the registry :mod:`capstudy.families`; trunks are built by
:mod:`capstudy.backbones`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from capstudy.families import FAMILIES, Family, get_family
from capstudy.scaling import DEFAULT_PRESET, Scale, compound_scale, free_scale

if TYPE_CHECKING:
    from capstudy.config import TrialConfig

__all__ = [
    "FAMILIES",
    "Family",
    "Variant",
    "all_variants",
    "free_variant",
    "get_family",
    "make_variant",
    "variant_of",
]


@dataclass(frozen=True)
class Variant:
    """One scaled backbone: family, step and the multipliers of its preset.

    Attributes:
        family: Family name.
        phi: Scaling step (0 or negative).
        preset: Scaling preset name, or ``"free"`` for an explicit triple.
        scale: Width, depth and native resolution.
    """

    family: str
    phi: int
    preset: str
    scale: Scale

    @property
    def label(self) -> str:
        """Paper label (``B-4``); free triples get ``<prefix>(w=…,d=…)``."""
        fam = get_family(self.family)
        if self.preset == "free":
            return f"{fam.label_prefix}(w={self.scale.width:.3g},d={self.scale.depth:.3g})"
        return fam.label(self.phi)


def make_variant(family: str, phi: int, preset: str = DEFAULT_PRESET) -> Variant:
    """Variant of ``family`` at step ``phi`` under ``preset``.

    Raises:
        KeyError: Unknown family.
        ValueError: ``phi`` outside the family's range, or unknown preset.
    """
    fam = get_family(family)
    if not fam.min_phi <= phi <= 0:
        raise ValueError(f"phi {phi} is outside {family}'s range [{fam.min_phi}, 0]")
    return Variant(family=family, phi=phi, preset=preset, scale=compound_scale(phi, preset))


def free_variant(family: str, scale: Scale) -> Variant:
    """Variant of ``family`` with an explicit (width, depth, resolution) triple."""
    get_family(family)
    return Variant(family=family, phi=0, preset="free", scale=scale)


def all_variants(preset: str = DEFAULT_PRESET) -> list[Variant]:
    """Every variant of every family under ``preset`` (22 with the three built-in families)."""
    return [make_variant(f.name, phi, preset) for f in FAMILIES.values() for phi in f.phis]


def variant_of(config: TrialConfig) -> Variant:
    """The variant a trial config asks for: a preset step, or a free triple.

    The one place a :class:`~capstudy.config.TrialConfig` becomes a :class:`Variant` (the
    engine, the pretraining stages, the recorder and the CLI all call it).
    """
    if config.width is not None and config.depth is not None:
        return free_variant(
            config.family, free_scale(config.width, config.depth, config.resolution)
        )
    return make_variant(config.family, config.phi, config.preset)
