"""The family registry itself: :class:`Family`, :func:`register`, :func:`get_family` (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

#: builder(width, depth, divisor, **timm_kwargs) -> a timm features-only trunk (nn.Module).
Builder = Callable[..., Any]


@dataclass(frozen=True)
class Family:
    """A backbone family.

    Attributes:
        name: Family id used in study files (``efficientnet_b0``).
        timm_name: The timm model whose generator builds it (phi 0 is exactly this model).
        phis: The scaling steps the study grid offers, largest model first.
        label_prefix: Paper label prefix: ``B`` gives ``B0, B-1, ...``; ``S`` gives ``S-0, ...``.
        min_phi: Smallest phi the builder accepts (free studies may go there).
        build: ``build(width, depth, divisor, **kwargs)`` -> features-only trunk; imports timm
            inside so the registry stays importable without torch.
        divisor: ``divisor(width)`` -> channel rounding divisor (see each family's module for
            why; 8 is timm's default).
        base_label: Label of phi 0 when it is not ``<prefix>-0`` (EfficientNet's ``B0``).
    """

    name: str
    timm_name: str
    phis: tuple[int, ...]
    label_prefix: str
    min_phi: int
    build: Builder
    divisor: Callable[[float], int]
    base_label: str | None = None

    def label(self, phi: int) -> str:
        """Paper label of step ``phi`` (``B0``, ``B-4``, ``S-0``, ``M-3``)."""
        if phi == 0 and self.base_label:
            return self.base_label
        return f"{self.label_prefix}-{abs(phi)}"


FAMILIES: dict[str, Family] = {}

#: The measured capacity axis: backbone parameters of every registered variant under each
#: preset ("family:phi" -> count), pinned by the golden test (tests/test_families.py) and read
#: by the power analysis as a pure lookup. Update it deliberately when a family is added.
PARAMS_FILE = Path(__file__).with_name("backbone_params.json")


@cache
def _params_table() -> dict[str, dict[str, int]]:
    data = json.loads(PARAMS_FILE.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def preset_backbone_params(family: str, phi: int, preset: str) -> int | None:
    """Backbone parameters of a preset variant from :data:`PARAMS_FILE`; None if absent."""
    return _params_table().get(preset, {}).get(f"{family}:{phi}")


def register(family: Family) -> Family:
    """Add ``family`` to the registry (once per name; a family module calls this at import).

    Raises:
        ValueError: A family of that name or label prefix is already registered.
    """
    for other in FAMILIES.values():
        if family.name == other.name or family.label_prefix == other.label_prefix:
            raise ValueError(
                f"family {family.name!r} (prefix {family.label_prefix!r}) clashes with "
                f"{other.name!r} (prefix {other.label_prefix!r}); names and prefixes are unique"
            )
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    """Look up a family by name.

    Raises:
        KeyError: With the known names, when ``name`` is unknown.
    """
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known families: {sorted(FAMILIES)}") from None
