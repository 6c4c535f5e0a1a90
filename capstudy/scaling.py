"""The scaling recipe: a family's step ``phi`` -> width, depth and resolution (pure module).

Compound scaling after EfficientNet (Tan & Le, 2019, arXiv 1905.11946): a step ``phi``
multiplies width by ``bw ** phi``, depth by ``bd ** phi`` and resolution by ``br ** phi``.
capstudy scales *down*, so ``phi`` is 0 or negative (B-1 ... B-7 are phi -1 ... -7).

Presets, each with its source:

* ``ultrasmall`` (default): ``bw = 1.46``, ``bd = 1.45``, ``br = 1`` (input fixed at 224).
  The coefficients of "Infrared Object Detection with Ultra Small ConvNets" (arXiv 2508.02927).
  Nominally a step divides cost by ``bd * bw**2 ≈ 3.1``; channel rounding and the floor of
  one block per stage make the realised step smaller (EfficientNet-B0 3.6 M -> B-7 17 k
  backbone parameters; ``capstudy models`` prints the measured axis).
* ``efficientnet``: the original compound coefficients ``bd = 1.2``, ``bw = 1.1``,
  ``br = 1.15`` (EfficientNet paper, Section 3.3), applied with negative phi.

A free ``(width, depth, resolution)`` triple bypasses the presets for studies that explore
beyond one compound axis (see :func:`free_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_RESOLUTION = 224
# Resolutions are rounded to a multiple of 32: the trunk's total stride is 32, so any other
# size would crop or pad the last feature map unevenly.
RESOLUTION_MULTIPLE = 32


@dataclass(frozen=True)
class Preset:
    """Compound scaling coefficients.

    Attributes:
        name: Preset name used in study files and ``capstudy models --preset``.
        width_base: Per-step width coefficient (``bw``).
        depth_base: Per-step depth coefficient (``bd``).
        resolution_base: Per-step resolution coefficient (``br``); 1 keeps 224.
        source: Where the coefficients come from.
    """

    name: str
    width_base: float
    depth_base: float
    resolution_base: float
    source: str


PRESETS: dict[str, Preset] = {
    "ultrasmall": Preset(
        "ultrasmall", 1.46, 1.45, 1.0, "arXiv 2508.02927 (ultra-small ConvNets), fixed 224"
    ),
    "efficientnet": Preset(
        "efficientnet", 1.1, 1.2, 1.15, "arXiv 1905.11946 (EfficientNet), Section 3.3"
    ),
}
DEFAULT_PRESET = "ultrasmall"


@dataclass(frozen=True)
class Scale:
    """Multipliers for one variant.

    Attributes:
        width: Channel multiplier (1.0 = the base model).
        depth: Block-repeat multiplier (1.0 = the base model).
        resolution: Native input resolution in pixels (square).
    """

    width: float
    depth: float
    resolution: int


def round_resolution(pixels: float) -> int:
    """Round a resolution to the nearest multiple of 32, at least 32."""
    return max(RESOLUTION_MULTIPLE, int(round(pixels / RESOLUTION_MULTIPLE)) * RESOLUTION_MULTIPLE)


def compound_scale(phi: int, preset: str = DEFAULT_PRESET) -> Scale:
    """Multipliers of step ``phi`` under a preset.

    Args:
        phi: Scaling step, 0 for the base model, negative to shrink.
        preset: A name from :data:`PRESETS`.

    Returns:
        The width, depth and resolution of that step.

    Raises:
        ValueError: Unknown preset, or a positive ``phi`` (capstudy only scales down).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown scaling preset {preset!r}; choose one of {sorted(PRESETS)}")
    if phi > 0:
        raise ValueError(f"phi must be 0 or negative (capstudy scales down), got {phi}")
    p = PRESETS[preset]
    if p.resolution_base == 1.0:
        resolution = BASE_RESOLUTION  # fixed: no rounding needed, 224 is already a multiple
    else:
        resolution = round_resolution(BASE_RESOLUTION * p.resolution_base**phi)
    return Scale(width=p.width_base**phi, depth=p.depth_base**phi, resolution=resolution)


def free_scale(width: float, depth: float, resolution: int | None = None) -> Scale:
    """A free ``(width, depth, resolution)`` triple, validated.

    Args:
        width: Channel multiplier in (0, 1].
        depth: Block-repeat multiplier in (0, 1].
        resolution: Input resolution; rounded to a multiple of 32 (default 224).

    Raises:
        ValueError: A multiplier outside (0, 1] or a resolution below 32.
    """
    for name, value in (("width", width), ("depth", depth)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"free scale {name} must be in (0, 1], got {value}")
    res = BASE_RESOLUTION if resolution is None else resolution
    if res < RESOLUTION_MULTIPLE:
        raise ValueError(f"free scale resolution must be >= 32, got {res}")
    return Scale(width=width, depth=depth, resolution=round_resolution(res))
