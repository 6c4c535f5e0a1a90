"""The backbone family registry (pure at import: builders import timm when called).

A family is one module in this package that calls :func:`register` with a :class:`Family`:
its builder, paper-label prefix, phi range and channel-divisor rule. Everything else — the
variant table (:mod:`capstudy.variants`), ``capstudy models``, study-file validation, the plan
and the golden parameter-count test — reads this registry, so adding a family means adding one
module here and one import line in this file (docs/contributing.md, "Adding a family").
"""

from __future__ import annotations

# The built-in families register themselves on import, in the order tables list them.
from capstudy.families import efficientnet, mobilenetv3, mobilenetv4
from capstudy.families.registry import (
    FAMILIES,
    PARAMS_FILE,
    Family,
    get_family,
    preset_backbone_params,
    register,
)

__all__ = [
    "FAMILIES",
    "PARAMS_FILE",
    "Family",
    "efficientnet",
    "get_family",
    "mobilenetv3",
    "mobilenetv4",
    "preset_backbone_params",
    "register",
]
