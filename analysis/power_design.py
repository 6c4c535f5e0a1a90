"""The design a power analysis simulates: a study's own grid, read from its study file.

A :class:`Design` is what the simulator needs of a study: its variants (every grid dim
except ``init``, ``train`` and ``seed``, each with its backbone parameter count), its inits,
train and evaluation domains, its seed count, HPO samples per cell and selection metric.
It is built from :func:`capstudy.study.expand_cells`, so it has exactly the study's cells
(per-family ``phi`` lists included).

Capacity: the simulated tables carry each variant's backbone parameters, the analysis's
default capacity axis. For the shipped presets they are a pure lookup in
``capstudy/families/backbone_params.json`` (the golden file
that pins the measured counts; a test holds the two equal). Free (width, depth) variants are
not in it: the caller passes ``count`` (the CLI measures them by building the trunk).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from capstudy import families
from capstudy.errors import CapstudyError
from capstudy.families import PARAMS_FILE
from capstudy.scaling import DEFAULT_PRESET, free_scale
from capstudy.study import GridDim, StudySpec, expand_cells
from capstudy.study.checks import DEFAULT_FAMILY
from capstudy.variants import free_variant, make_variant

_PARAMS_FILE = PARAMS_FILE  # the golden capacity axis, shipped with the family registry
# Grid dims that are not part of a variant: the simulator sets init, train domain and seed.
_NOT_VARIANT = ("init", "train", "seed")
# Cell ids separate dims like capstudy.study.cells does, so keys look like a real study's.
_SEP = "|"

#: ``count(family, width, depth) -> backbone parameters`` for free-scale variants.
Counter = Callable[[str, float, float], int]


@dataclass(frozen=True)
class DesignVariant:
    """One variant of the grid: its dims (in grid order), label and capacity.

    Attributes:
        family: Backbone family.
        phi: Scaling step (0 for free-scale variants).
        label: Paper label (``B-4``) or free-scale label.
        backbone_params: Parameters of the features-only trunk.
        dims: The variant's grid values, study-file names, in grid order (no init/train/seed).
    """

    family: str
    phi: int
    label: str
    backbone_params: int
    dims: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Design:
    """A study's grid as the simulator sees it (see the module docstring)."""

    study: str
    metric: str
    mode: str
    variants: tuple[DesignVariant, ...]
    inits: tuple[str, ...]
    train_domains: tuple[str, ...]
    eval_domains: tuple[str, ...]
    n_seeds: int
    samples_per_cell: int

    @property
    def families(self) -> tuple[str, ...]:
        """Families in grid order."""
        return tuple(dict.fromkeys(v.family for v in self.variants))

    @property
    def n_comparisons(self) -> int:
        """Threshold tests the analysis runs: family x train x eval domain x pretrained init."""
        pretrained = [i for i in self.inits if i != "random"]
        return (
            len(self.families) * len(self.train_domains) * len(self.eval_domains) * len(pretrained)
        )

    def trials(self, n_seeds: int) -> int:
        """Trials of the grid with ``n_seeds`` seeds."""
        cells = len(self.variants) * len(self.inits) * len(self.train_domains) * n_seeds
        return cells * self.samples_per_cell


def preset_backbone_params(family: str, phi: int, preset: str = DEFAULT_PRESET) -> int | None:
    """Backbone parameters of a preset variant from the golden lookup; None if absent."""
    return families.preset_backbone_params(family, phi, preset)


def _variant_capacity(values: dict[str, Any], count: Counter | None) -> tuple[int, str, int]:
    """``(phi, label, backbone_params)`` of a variant's merged (fixed + cell) values."""
    family = values.get("family", DEFAULT_FAMILY)
    if "width" in values:
        width, depth = float(values["width"]), float(values.get("depth", 1.0))
        label = free_variant(family, free_scale(width, depth)).label
        if count is None:
            raise CapstudyError(
                f"free-scale variant {label}: its backbone parameters are not in the lookup; "
                "run `capstudy power`, which measures them by building the trunk"
            )
        return 0, label, int(count(family, width, depth))
    phi = int(values.get("phi", 0))
    preset = values.get("preset", DEFAULT_PRESET)
    label = make_variant(family, phi, preset).label
    params = preset_backbone_params(family, phi, preset)
    if params is None:
        raise CapstudyError(
            f"{family} phi={phi} preset={preset}: no backbone parameter count in "
            f"{_PARAMS_FILE.name}; add it to capstudy/families/backbone_params.json"
        )
    return phi, label, params


def _dim_values(spec: StudySpec, name: str, default: Any) -> tuple:
    for dim in spec.grid:
        if dim.name == name:
            return tuple(dim.values)
    return (spec.fixed.get(name, default),)


def design_from_study(spec: StudySpec, count: Counter | None = None) -> Design:
    """The simulator's view of ``spec``'s grid.

    Args:
        spec: A validated study.
        count: Backbone parameters of a free-scale variant (``family, width, depth``);
            needed only when the study has free-scale variants.

    Raises:
        CapstudyError: no random-init baseline, or a variant's capacity is unknown.
    """
    # One seed is enough to enumerate the variants; the simulator sets its own seed counts.
    grid = tuple(GridDim("seed", (0,)) if d.name == "seed" else d for d in spec.grid)
    cells = expand_cells(dataclasses.replace(spec, grid=grid))
    inits = _dim_values(spec, "init", "random")
    if "random" not in inits or len(inits) < 2:
        raise CapstudyError(
            f"study {spec.name}: init {list(inits)} needs 'random' and at least one pretrained "
            "init: gains (and so thresholds) are differences against random init"
        )
    variants: dict[tuple, DesignVariant] = {}
    for cell in cells:
        dims = tuple((k, v) for k, v in cell.values.items() if k not in _NOT_VARIANT)
        if dims in variants:
            continue
        values = {**spec.fixed, **dict(dims)}
        phi, label, params = _variant_capacity(values, count)
        family = values.get("family", DEFAULT_FAMILY)
        variants[dims] = DesignVariant(family, phi, label, params, dims)
    seeds = _dim_values(spec, "seed", 0)
    return Design(
        study=spec.name,
        metric=spec.metric.rsplit("/", 1)[-1],
        mode=spec.mode,
        variants=tuple(variants.values()),
        inits=tuple(str(i) for i in inits),
        train_domains=tuple(str(t) for t in _dim_values(spec, "train", "")),
        eval_domains=tuple(spec.evaluate) or tuple(_dim_values(spec, "train", "")),
        n_seeds=len(seeds),
        samples_per_cell=spec.tune.samples_per_cell,
    )


def cell_text(variant: DesignVariant, init: str, train: str, seed: int) -> tuple[str, str, str]:
    """``(cell, pair_key, variant_key)`` spelled as a real study's recorder spells them.

    Cell ids list the family bare, then ``key=value`` in grid order (init, train and seed
    after the variant's dims, as in every shipped study); the pair key drops ``init``, the
    variant key also ``seed`` (``capstudy.keys.comparison_keys``).
    """
    parts = [str(v) if k == "family" else f"{k}={v}" for k, v in variant.dims]
    variant_key = _SEP.join([*parts, f"train={train}"])
    pair_key = f"{variant_key}{_SEP}seed={seed}"
    cell = _SEP.join([*parts, f"init={init}", f"train={train}", f"seed={seed}"])
    return cell, pair_key, variant_key
