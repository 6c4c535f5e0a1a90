"""Checks of trial keys and values in a study file, each error located (pure module).

A value is checked where it is written (``fixed.epochs``, ``space.phi.grid_search[3]``), so
the message names that exact key and line; whole cells are checked in :mod:`capstudy.study.cells`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from capstudy.config import INIT_CHOICES, ConfigError, TrialConfig
from capstudy.data.domains import domain_task, parse_domain
from capstudy.scaling import PRESETS, RESOLUTION_MULTIPLE
from capstudy.study.source import KeyPath, SourceDoc
from capstudy.variants import FAMILIES, make_variant

# Trial fields a study file sets elsewhere (structure), with where to set them instead.
STRUCTURAL = {
    "task": "study.task",
    "eval_domains": "the top-level 'evaluate' list",
    "data_roots": "the top-level 'data' mapping",
    "hpo_keys": "nothing: it is computed from the sampled dims",
    "train_domain": "'train' (the study-file name of the train domain)",
}
# Study-file name -> TrialConfig field, where they differ.
TRIAL_NAMES = {"train": "train_domain"}
TRIAL_KEYS = tuple(sorted((set(TrialConfig.field_names()) - set(STRUCTURAL)) | set(TRIAL_NAMES)))
# Keys that define what a study compares: a cell is one value of each. They may be fixed or
# grid dims, never sampled, because ASHA and the analysis pair trials within a cell.
DESIGN_DIMS = ("family", "phi", "preset", "width", "depth", "resolution", "init", "train", "seed")
FREE_DIMS = ("width", "depth", "resolution")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin")
DEFAULT_FAMILY = TrialConfig.family


def trial_name(key: str) -> str:
    """TrialConfig field of a study-file key (``train`` -> ``train_domain``)."""
    return TRIAL_NAMES.get(key, key)


def check_trial_key(doc: SourceDoc, path: KeyPath, key: str) -> None:
    """``key`` may appear in ``fixed`` or ``space``; else raise naming where it belongs."""
    if key in STRUCTURAL:
        raise doc.error(path, f"not set here; use {STRUCTURAL[key]}")
    if key not in TRIAL_KEYS:
        raise doc.error(path, f"unknown trial key; accepted: {', '.join(TRIAL_KEYS)}")


def check_value(
    doc: SourceDoc, path: KeyPath, key: str, value: Any, task: str, base: Path, notes: list[str]
) -> Any:
    """Check one trial value on its own; returns it (init paths made absolute).

    The value goes through :meth:`TrialConfig.from_dict` alone (with the task's defaults for
    every other key), so a type or range error is this key's, located at ``path``. The value
    comes back coerced to the field's type (``phi: -4.0`` -> ``-4``), so cell ids are stable.
    """
    probe = {"task": task, trial_name(key): value}
    if key in ("width", "depth"):
        probe = {"width": 1.0, "depth": 1.0, **probe}  # a free scale needs both
    try:
        value = getattr(TrialConfig.from_dict(probe, source=doc.where(path)), trial_name(key))
    except ConfigError as exc:
        raise doc.error(path, _strip_source(str(exc), doc.where(path))) from None
    if key == "family" and value not in FAMILIES:
        raise doc.error(path, f"unknown family {value!r}; known: {', '.join(FAMILIES)}")
    if key == "preset" and value not in PRESETS:
        raise doc.error(path, f"unknown preset {value!r}; known: {', '.join(PRESETS)}")
    if key == "phi" and value > 0:
        raise doc.error(path, f"phi must be 0 or negative (capstudy scales down), got {value}")
    if key in ("width", "depth") and not 0.0 < value <= 1.0:
        raise doc.error(path, f"{key} must be in (0, 1], got {value}")
    if key == "resolution" and (value < 32 or value % RESOLUTION_MULTIPLE):
        raise doc.error(path, f"resolution must be a multiple of 32 and >= 32, got {value}")
    if key == "train":
        _check_train(doc, path, value, task)
    if key == "init":
        return _check_init(doc, path, value, base, notes)
    return value


def field_type(key: str) -> str:
    """The TrialConfig type of a study-file key, as text (``int``, ``float``, ``str | None``)."""
    return str(TrialConfig.__dataclass_fields__[trial_name(key)].type)


def _strip_source(message: str, source: str) -> str:
    """ConfigError messages start with their source; the StudyError adds it again."""
    return message[len(source) + 2 :] if message.startswith(source + ": ") else message


def _check_train(doc: SourceDoc, path: KeyPath, value: str, task: str) -> None:
    try:
        parse_domain(value)
    except Exception as exc:  # CapstudyError from the data module, re-located here
        raise doc.error(path, str(exc)) from None
    if domain_task(value) != task:
        raise doc.error(path, f"{value!r} is a {domain_task(value)} domain; study is {task}")


def _check_init(doc: SourceDoc, path: KeyPath, value: str, base: Path, notes: list[str]) -> str:
    """A built-in init, or a checkpoint path (absolute, since trials run elsewhere)."""
    if value in INIT_CHOICES:
        return value
    target = (base / Path(value).expanduser()).resolve()
    if target.is_file():
        return str(target)
    if value.endswith(CHECKPOINT_SUFFIXES):
        # Not fatal: on a cluster the checkpoint may exist on the workers only.
        notes.append(f"{doc.where(path)}: checkpoint {target} does not exist on this machine")
        return str(target)
    raise doc.error(
        path,
        f"init must be one of {', '.join(INIT_CHOICES)} or a checkpoint file "
        f"({', '.join(CHECKPOINT_SUFFIXES)}), got {value!r}",
    )


def families_in_play(fixed: Mapping[str, Any], family_dim: Any) -> tuple[str, ...]:
    """Families of the study: the family grid, else the fixed family, else the default."""
    if family_dim is not None:
        return tuple(family_dim.values)
    return (fixed.get("family", DEFAULT_FAMILY),)


def _values_and_paths(fixed: Mapping, grid: Mapping, key: str, family: str) -> list:
    """(value, path) pairs ``key`` takes in cells of ``family`` (empty when not set)."""
    if key in fixed:
        return [(fixed[key], ("fixed", key))]
    dim = grid.get(key)
    if dim is None:
        return []
    if dim.by_family is None:
        return [(v, ("space", key, "grid_search", i)) for i, v in enumerate(dim.values)]
    return [
        (v, ("space", key, "grid_search", family, i)) for i, v in enumerate(dim.by_family[family])
    ]


def check_capacity(doc: SourceDoc, fixed: Mapping[str, Any], grid: Mapping[str, Any]) -> None:
    """Capacity is either family × phi (a variant that exists) or a free triple.

    Raises:
        StudyError: Half a free triple, phi together with a free triple, or a (family, phi)
            combination outside the family's range, located at the offending value.
    """
    present = {k for k in ("phi", "preset", *FREE_DIMS) if k in fixed or k in grid}
    where = {k: ("fixed", k) if k in fixed else ("space", k) for k in present}
    if ("width" in present) != ("depth" in present):
        missing = "depth" if "width" in present else "width"
        other = "width" if missing == "depth" else "depth"
        raise doc.error(where[other], f"a free scale needs both width and depth ({missing})")
    if "resolution" in present and "width" not in present:
        raise doc.error(where["resolution"], "resolution is for free scales (width and depth)")
    if "width" in present:
        for key in ("phi", "preset"):
            if key in present:
                raise doc.error(where[key], f"a free-scale study (width, depth) has no {key}")
        return
    for family in families_in_play(fixed, grid.get("family")):
        presets = _values_and_paths(fixed, grid, "preset", family) or [("ultrasmall", ())]
        for phi, path in _values_and_paths(fixed, grid, "phi", family) or [(0, ())]:
            for preset, _ in presets:
                try:
                    make_variant(family, phi, preset)
                except ValueError as exc:
                    hint = ""
                    if "grid_search" in path and not isinstance(path[3], str):
                        hint = (
                            "; every family takes every phi of a plain list: give phi per "
                            "family, e.g. {grid_search: {efficientnet_b0: [...], "
                            "mobilenetv3_small: [...]}}"
                        )
                    raise doc.error(path, f"{exc}{hint}") from None
