"""Backbone families and their variants, as data (pure module).

A variant is ``(family, phi, preset)``; its paper label (``B-4``, ``S-2``) is data derived
here, never a name used in code. Builders live in :mod:`capstudy.backbones`.
"""

from __future__ import annotations

from dataclasses import dataclass

from capstudy.scaling import DEFAULT_PRESET, Scale, compound_scale


@dataclass(frozen=True)
class Family:
    """A backbone family.

    Attributes:
        name: Family id used in study files (``efficientnet_b0``).
        timm_name: The timm model whose generator builds it (phi 0 is exactly this model).
        phis: The scaling steps the study grid offers, largest model first.
        label_prefix: Paper label prefix: ``B`` gives ``B0, B-1, ...``; ``S`` gives ``S-0, ...``.
        min_phi: Smallest phi the builder accepts (free studies may go there).
    """

    name: str
    timm_name: str
    phis: tuple[int, ...]
    label_prefix: str
    min_phi: int

    def label(self, phi: int) -> str:
        """Paper label of step ``phi`` (EfficientNet's base is ``B0``, MobileNet's ``S-0``)."""
        if self.label_prefix == "B" and phi == 0:
            return "B0"
        return f"{self.label_prefix}-{abs(phi)}"


FAMILIES: dict[str, Family] = {
    "efficientnet_b0": Family(
        "efficientnet_b0", "efficientnet_b0", tuple(range(0, -8, -1)), "B", -7
    ),
    "mobilenetv3_small": Family(
        "mobilenetv3_small", "mobilenetv3_small_100", tuple(range(0, -7, -1)), "S", -6
    ),
}


def get_family(name: str) -> Family:
    """Look up a family by name.

    Raises:
        KeyError: With the known names, when ``name`` is unknown.
    """
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known families: {sorted(FAMILIES)}") from None


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
    """Every variant of every family under ``preset`` (15 with the two built-in families)."""
    return [make_variant(f.name, phi, preset) for f in FAMILIES.values() for phi in f.phis]
