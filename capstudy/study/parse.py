"""The sections of a study file: their types, defaults and checks (pure module).

:mod:`capstudy.study.loader` assembles these into a :class:`~capstudy.study.loader.StudySpec`. Each
``parse_*`` function checks one section with a closed vocabulary and raises
:class:`~capstudy.study.source.StudyError` naming the key path, the file and the line.
Trial-value checks that need several sections at once (variants, whole cells) live in
:mod:`capstudy.study.checks` and :mod:`capstudy.study.cells`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from capstudy import keys
from capstudy.config import TASKS
from capstudy.data.domains import DATASETS, domain_task, parse_domain
from capstudy.recipes import recipe
from capstudy.study.checks import (
    DESIGN_DIMS,
    check_capacity,
    check_trial_key,
    check_value,
    families_in_play,
    field_type,
)
from capstudy.study.source import KeyPath, SourceDoc
from capstudy.study.spec import (
    AshaSpec,
    GridDim,
    PretrainSpec,
    Resources,
    SampledDim,
    TuneSpec,
)

DISTRIBUTIONS = ("grid_search", "choice", "uniform", "loguniform", "randint")
# Grid dims come first in this order (cell ids read family, capacity, init, data, seed);
# any other grid dim follows, sorted by name, so reordering the file never renames a cell.
DIM_ORDER = DESIGN_DIMS
SCALAR = (str, int, float, bool)


# --- small typed readers -------------------------------------------------------------------


def _section(doc: SourceDoc, path: KeyPath, value: Any, allowed: tuple[str, ...]) -> dict:
    """A mapping section (None -> empty) whose keys are all in ``allowed``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(path, f"must be a mapping with keys {', '.join(allowed)}")
    for key in value:
        if key not in allowed:
            raise doc.error((*path, key), f"unknown key; allowed here: {', '.join(allowed)}")
    return value


def _int(doc: SourceDoc, path: KeyPath, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise doc.error(path, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _number(doc: SourceDoc, path: KeyPath, value: Any, *, above: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(path, f"must be a number, got {value!r}")
    if above is not None and not value > above:
        raise doc.error(path, f"must be > {above}, got {value!r}")
    return float(value)


def _one_of(doc: SourceDoc, path: KeyPath, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise doc.error(path, f"must be one of {', '.join(options)}, got {value!r}")
    return value


def number_in(doc: SourceDoc, path: KeyPath, value: Any, lo: float, hi: float) -> float:
    """A number strictly between ``lo`` and ``hi``."""
    number = _number(doc, path, value)
    if not lo < number < hi:
        raise doc.error(path, f"must be between {lo} and {hi} (exclusive), got {value!r}")
    return number


# Shared with the other section modules (capstudy.study.looks).
section, one_of = _section, _one_of


# --- sections --------------------------------------------------------------------------


def parse_study(doc: SourceDoc, value: Any, default_name: str) -> tuple[str, str, str, str]:
    """``study: {name, task, metric, mode}`` -> (name, task, metric, mode)."""
    sec = _section(doc, ("study",), value, ("name", "task", "metric", "mode"))
    name = sec.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise doc.error(("study", "name"), "must be a non-empty string")
    if "task" not in sec:
        raise doc.error(("study",), f"missing 'task' ({' or '.join(TASKS)})")
    task = _one_of(doc, ("study", "task"), sec["task"], TASKS)
    names = keys.DETECTION_METRICS if task == "detection" else keys.CLASSIFICATION_METRICS
    allowed = tuple(keys.val_metric(n) for n in names)
    # Selection uses the in-domain validation split only (DESIGN.md): never a shift metric.
    metric = _one_of(doc, ("study", "metric"), sec.get("metric", allowed[-1]), allowed)
    mode = _one_of(doc, ("study", "mode"), sec.get("mode", "max"), ("max", "min"))
    return name, task, metric, mode


def parse_fixed(
    doc: SourceDoc, value: Any, task: str, base: Path, notes: list[str]
) -> dict[str, Any]:
    """``fixed: {trial key: value}``: each key and value checked on its own."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(("fixed",), "must be a mapping of trial keys to values")
    fixed = {}
    for key, val in value.items():
        check_trial_key(doc, ("fixed", key), key)
        fixed[key] = check_value(doc, ("fixed", key), key, val, task, base, notes)
    return fixed


def parse_space(
    doc: SourceDoc, value: Any, task: str, fixed: dict, base: Path, notes: list[str]
) -> tuple[tuple[GridDim, ...], tuple[SampledDim, ...]]:
    """``space: {key: {distribution: args}}`` -> (grid dims in cell order, sampled dims)."""
    if value is None:
        return (), ()
    if not isinstance(value, dict):
        raise doc.error(("space",), "must be a mapping of trial keys to distributions")
    grid: dict[str, GridDim] = {}
    sampled: list[SampledDim] = []
    for key, dist in value.items():
        path = ("space", key)
        check_trial_key(doc, path, key)
        if key in fixed:
            raise doc.error(path, f"also set in fixed (line {doc.line(('fixed', key))})")
        if not isinstance(dist, dict) or len(dist) != 1:
            raise doc.error(
                path,
                f"must be a mapping with exactly one of: {', '.join(DISTRIBUTIONS)} "
                "(a single value belongs in fixed)",
            )
        kind, args = next(iter(dist.items()))
        if kind not in DISTRIBUTIONS:
            raise doc.error(
                (*path, kind),
                f"unknown distribution {kind!r}; use one of {', '.join(DISTRIBUTIONS)}",
            )
        if kind == "grid_search":
            grid[key] = _grid_dim(doc, (*path, kind), key, args, task, base, notes)
        elif key in DESIGN_DIMS:
            raise doc.error(
                (*path, kind),
                "defines what is compared (ASHA and the analysis pair trials by cell), so it "
                "must be a grid_search or fixed, not sampled",
            )
        else:
            sampled.append(_sampled_dim(doc, (*path, kind), key, kind, args, task, base, notes))
    families = families_in_play(fixed, grid.get("family"))
    for dim in grid.values():
        if dim.by_family is not None and set(dim.by_family) != set(families):
            raise doc.error(
                ("space", dim.name, "grid_search"),
                f"per-family values must name exactly the study's families {list(families)}",
            )
    check_capacity(doc, fixed, grid)
    order = [n for n in DIM_ORDER if n in grid] + sorted(n for n in grid if n not in DIM_ORDER)
    return tuple(grid[n] for n in order), tuple(sampled)


def _grid_dim(
    doc: SourceDoc, path: KeyPath, key: str, args: Any, task: str, base: Path, notes: list[str]
) -> GridDim:
    """A list of values, or (not for ``family``) a mapping family -> list of values."""
    if isinstance(args, dict) and key != "family":
        by_family = {}
        for fam, vals in args.items():
            by_family[fam] = _values(doc, (*path, fam), key, vals, task, base, notes)
        union = tuple(dict.fromkeys(v for vals in by_family.values() for v in vals))
        return GridDim(key, union, by_family)
    return GridDim(key, _values(doc, path, key, args, task, base, notes))


def _values(
    doc: SourceDoc, path: KeyPath, key: str, args: Any, task: str, base: Path, notes: list[str]
) -> tuple[Any, ...]:
    """A non-empty list of distinct scalar values, each a valid value of ``key``."""
    if not isinstance(args, list) or not args:
        raise doc.error(path, "must be a non-empty list of values")
    out = []
    for i, item in enumerate(args):
        if not isinstance(item, SCALAR):
            raise doc.error((*path, i), f"must be a plain value, got {item!r}")
        checked = check_value(doc, (*path, i), key, item, task, base, notes)
        if checked in out:
            raise doc.error((*path, i), f"duplicate value {item!r}")
        out.append(checked)
    return tuple(out)


def _sampled_dim(
    doc: SourceDoc,
    path: KeyPath,
    key: str,
    kind: str,
    args: Any,
    task: str,
    base: Path,
    notes: list[str],
) -> SampledDim:
    """``choice: [..]``, ``uniform/loguniform: [lo, hi]`` or ``randint: [lo, hi]``."""
    if kind == "choice":
        return SampledDim(key, kind, _values(doc, path, key, args, task, base, notes))
    if not isinstance(args, list) or len(args) != 2:
        raise doc.error(path, "must be a list [lo, hi]")
    if kind in ("uniform", "loguniform") and field_type(key).startswith("int"):
        raise doc.error(path, f"{key} is an integer; sample it with randint or choice")
    if kind == "randint":
        lo, hi = (_int(doc, (*path, i), v, minimum=-(2**62)) for i, v in enumerate(args))
    else:
        lo, hi = (_number(doc, (*path, i), v) for i, v in enumerate(args))
    if not lo < hi:
        raise doc.error(path, f"needs lo < hi, got [{args[0]}, {args[1]}]")
    if kind == "loguniform" and lo <= 0:
        raise doc.error((*path, 0), f"loguniform needs lo > 0, got {args[0]}")
    for i, bound in enumerate((lo, hi)):
        check_value(doc, (*path, i), key, bound, task, base, notes)
    return SampledDim(key, kind, (lo, hi))


def parse_evaluate(doc: SourceDoc, value: Any, task: str) -> tuple[str, ...]:
    """``evaluate: [dataset/modality, …]``: the domains every trial reports."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise doc.error(("evaluate",), "must be a list of domains like flir/ir")
    out: list[str] = []
    for i, dom in enumerate(value):
        check_domain(doc, ("evaluate", i), dom, task)
        if dom in out:
            raise doc.error(("evaluate", i), f"duplicate domain {dom!r}")
        out.append(dom)
    return tuple(out)


def check_domain(doc: SourceDoc, path: KeyPath, domain: Any, task: str) -> str:
    """A ``dataset/modality`` name of a known dataset whose task is the study's."""
    if not isinstance(domain, str):
        raise doc.error(path, f"must be a domain like 'flir/ir', got {domain!r}")
    try:
        parse_domain(domain)
    except Exception as exc:  # CapstudyError from the data module, re-located here
        raise doc.error(path, str(exc)) from None
    if domain_task(domain) != task:
        raise doc.error(path, f"{domain!r} is a {domain_task(domain)} domain; study is {task}")
    return domain


def parse_tune(
    doc: SourceDoc,
    value: Any,
    task: str,
    fixed: dict,
    grid: tuple[GridDim, ...],
    sampled: tuple[SampledDim, ...],
    notes: list[str],
) -> TuneSpec:
    """``tune: {samples_per_cell, search, asha: {grace, reduction, scope, max_t}, …}``."""
    path = ("tune",)
    sec = _section(doc, path, value, ("samples_per_cell", "search", "asha", "max_concurrent"))
    samples = _int(doc, (*path, "samples_per_cell"), sec.get("samples_per_cell", 1), 1)
    if samples > 1 and not sampled:
        raise doc.error(
            (*path, "samples_per_cell"),
            "more than one sample per cell needs sampled dims in space (else the trials are "
            "identical); add seeds as a grid dim instead",
        )
    search = _one_of(doc, (*path, "search"), sec.get("search", "random"), ("random", "optuna"))
    max_conc = sec.get("max_concurrent")
    if max_conc is not None:
        max_conc = _int(doc, (*path, "max_concurrent"), max_conc, 1)
    varied = any(d.name == "epochs" for d in (*grid, *sampled))
    epochs = None if varied else fixed.get("epochs", recipe("finetune", task)["epochs"])
    asha = _parse_asha(doc, sec.get("asha"), epochs, notes)
    return TuneSpec(samples, search, asha, max_conc)


def _parse_asha(doc: SourceDoc, value: Any, epochs: int | None, notes: list[str]) -> AshaSpec:
    path = ("tune", "asha")
    sec = _section(doc, path, value, ("grace", "reduction", "scope", "max_t"))
    if epochs is None and "max_t" not in sec:
        raise doc.error(path, "epochs varies across trials, so give asha.max_t explicitly")
    max_t = _int(doc, (*path, "max_t"), sec.get("max_t", epochs), 1)
    if epochs is not None and max_t > epochs:
        raise doc.error((*path, "max_t"), f"must be <= epochs ({epochs}): no trial runs longer")
    grace = _int(doc, (*path, "grace"), sec.get("grace", 1), 1)
    if grace > max_t:
        raise doc.error((*path, "grace"), f"must be <= max_t ({max_t})")
    reduction = _number(doc, (*path, "reduction"), sec.get("reduction", 3), above=1.0)
    scope = _one_of(doc, (*path, "scope"), sec.get("scope", "cell"), ("cell", "global"))
    if scope == "global":
        notes.append(
            f"{doc.where((*path, 'scope'))}: global ASHA compares trials across cells, so it "
            "stops small or scratch models for being small or scratch — the very comparison "
            "the study makes; prefer scope: cell"
        )
    return AshaSpec(grace=grace, reduction=reduction, scope=scope, max_t=max_t)


def parse_resources(
    doc: SourceDoc, value: Any, path: KeyPath = ("resources",), default: Resources | None = None
) -> Resources:
    """``resources: {cpu, gpu}``; a GPU share above 1 must be whole GPUs.

    Args:
        doc: The study file.
        value: The section (None: all defaults).
        path: Where the section is (``resources`` per trial, ``pretrain.resources``).
        default: Values of keys the section leaves out (default: 1 CPU, no GPU).
    """
    default = default or Resources()
    sec = _section(doc, path, value, ("cpu", "gpu"))
    cpu = _number(doc, (*path, "cpu"), sec.get("cpu", default.cpu), above=0.0)
    gpu = sec.get("gpu", default.gpu)
    gpu = _number(doc, (*path, "gpu"), gpu) if gpu != 0 else 0.0
    if gpu < 0 or (gpu > 1 and gpu != int(gpu)):
        raise doc.error((*path, "gpu"), f"must be 0, a fraction <= 1 or whole GPUs: {gpu}")
    return Resources(cpu=cpu, gpu=gpu)


def parse_data(doc: SourceDoc, value: Any, base: Path) -> dict[str, str]:
    """``data: {dataset: folder}``; relative folders resolve against the study file."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(("data",), "must map dataset names to local folders")
    out = {}
    for name, folder in value.items():
        if name not in DATASETS:
            raise doc.error(("data", name), f"unknown dataset; known: {', '.join(DATASETS)}")
        if not isinstance(folder, str) or not folder:
            raise doc.error(("data", name), "must be a folder path")
        # Absolute, because trials run in Ray workers whose cwd is not the user's.
        out[name] = str((base / Path(folder).expanduser()).resolve())
    return out


def parse_pretrain(doc: SourceDoc, value: Any, trial_resources: Resources) -> PretrainSpec:
    """``pretrain: {imagenet, coco, epochs_*, image_size_*, max_train_images, resources}``.

    ``pretrain.resources`` keys left out take the trials' ``resources`` values; without the
    section, ``resources`` stays None (the trials' resources, as before the key existed).
    """
    defaults = asdict(PretrainSpec())
    sec = _section(doc, ("pretrain",), value, tuple(defaults))
    values = {**defaults, **sec}
    if "resources" in sec:
        values["resources"] = parse_resources(
            doc, sec["resources"], ("pretrain", "resources"), default=trial_resources
        )
    for stage, fmt in (("imagenet", "imagefolder"), ("coco", "coco")):
        name = values[stage]
        info = DATASETS.get(name) if isinstance(name, str) else None
        if info is None or info.format != fmt:
            ok = [d.name for d in DATASETS.values() if d.format == fmt]
            raise doc.error(("pretrain", stage), f"must be a {fmt} dataset ({', '.join(ok)})")
    for key in defaults:
        if key.startswith("epochs_"):
            _int(doc, ("pretrain", key), values[key], 1)
        elif key.startswith("image_size_"):
            size = _int(doc, ("pretrain", key), values[key], 32)
            if size % 32:
                raise doc.error(("pretrain", key), "must be a multiple of 32")
    _int(doc, ("pretrain", "max_train_images"), values["max_train_images"], 0)
    return PretrainSpec(**values)
