"""The plan of a study, before anything runs: cells, trials, pretraining, epochs (pure).

``capstudy launch --dry-run`` prints :meth:`Plan.render`. The ASHA figure is an estimate of
synchronous successive halving inside each cell; asynchronous ASHA (Ray) promotes a little
more, because the first trial to reach a rung always continues.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from capstudy.families import preset_backbone_params
from capstudy.recipes import STAGES, STAGES_FOR_INIT
from capstudy.scaling import BASE_RESOLUTION, DEFAULT_PRESET, Scale, compound_scale
from capstudy.study.cells import Cell, expand_cells
from capstudy.study.checks import DEFAULT_FAMILY
from capstudy.study.spec import StudySpec
from capstudy.variants import Variant, free_variant, make_variant

Capacity = int | Scale
WeightsCheck = Callable[[str, Capacity, str], bool]


@dataclass(frozen=True)
class PretrainNeed:
    """One pretraining run the study's grid needs.

    Attributes:
        family: Family name.
        capacity: ``phi`` (int) for the default preset; otherwise the variant's ``Scale``
            with resolution set to 224 — pretrained weights depend on width and depth only
            (the stage trains at its own image size), so that is their identity.
        stage: ``imagenet`` or ``coco`` (``coco`` starts from the ``imagenet`` weights).
        label: Paper label of the variant (``B-4``), for display.
    """

    family: str
    capacity: Capacity
    stage: str
    label: str

    @property
    def variant(self) -> Variant:
        """The variant whose weights this need makes (a ``phi`` is a default-preset step)."""
        if isinstance(self.capacity, Scale):
            return free_variant(self.family, self.capacity)
        return make_variant(self.family, self.capacity, DEFAULT_PRESET)


def cell_capacity(spec: StudySpec, cell: Cell) -> tuple[str, Capacity, str]:
    """(family, capacity, label) of a cell; capacity as in :class:`PretrainNeed`."""
    values = {**spec.fixed, **cell.values}
    family = values.get("family", DEFAULT_FAMILY)
    if "width" in values:
        scale = Scale(float(values["width"]), float(values["depth"]), BASE_RESOLUTION)
        return family, scale, free_variant(family, scale).label
    phi = int(values.get("phi", 0))
    preset = values.get("preset", DEFAULT_PRESET)
    label = make_variant(family, phi, preset).label
    if preset == DEFAULT_PRESET:
        return family, phi, label
    multipliers = compound_scale(phi, preset)
    return family, Scale(multipliers.width, multipliers.depth, BASE_RESOLUTION), label


def pretrain_needs(spec: StudySpec, cells: list[Cell]) -> list[PretrainNeed]:
    """Pretraining runs the cells' inits need, each once: all imagenet runs, then coco."""
    seen: dict[tuple, PretrainNeed] = {}
    for cell in cells:
        init = {**spec.fixed, **cell.values}.get("init", "random")
        family, capacity, label = cell_capacity(spec, cell)
        for stage in STAGES_FOR_INIT.get(init, ()):  # a checkpoint path needs none
            seen.setdefault((stage, family, capacity), PretrainNeed(family, capacity, stage, label))
    return sorted(seen.values(), key=lambda n: STAGES.index(n.stage))


def asha_rungs(grace: int, reduction: float, max_t: int) -> list[int]:
    """Epochs at which ASHA decides, exactly as Ray's ``AsyncHyperBandScheduler`` does.

    The one rung function of capstudy: the plan's estimate and the per-cell scheduler
    (:mod:`capstudy.launch.asha`) both use it, and a test holds it equal to the milestones of
    Ray's own scheduler. Ray keeps float milestones ``grace * reduction**k`` and decides when a
    trial's whole epoch count first reaches one, so a milestone of 4.5 acts at epoch 5. An
    epoch at or past ``max_t`` is no decision: the trial ends there anyway. Milestones that
    round to the same epoch (a reduction close to 1) count once.

    Example:
        grace 1, reduction 3, max_t 9 -> [1, 3]; grace 2, reduction 1.5, max_t 5 -> [2, 3]
        (the third milestone, 4.5, would act at epoch 5, where every trial stops).

    Raises:
        ValueError: grace < 1, reduction <= 1 or max_t < 1.
    """
    if grace < 1 or reduction <= 1 or max_t < 1:
        raise ValueError(
            f"ASHA needs grace >= 1, reduction > 1, max_t >= 1 (got {grace}, {reduction}, {max_t})"
        )
    rungs: list[int] = []
    milestone = float(grace)
    while True:
        # 1e-9: grace * reduction**k is a float; 3 * 1.5**2 must act at 7, not 7.000000001 -> 8.
        epoch = math.ceil(milestone - 1e-9)
        if epoch >= max_t:
            return rungs
        if not rungs or epoch > rungs[-1]:
            rungs.append(epoch)
        milestone *= reduction


def asha_stops(trials: int, grace: int, reduction: float, max_t: int) -> list[tuple[int, int]]:
    """``(epochs run, trials)``: how many of ``trials`` competing trials stop after how many
    epochs under successive halving.

    Every trial runs to the first rung; past each rung ``ceil(n / η)`` continue (at least
    one, as ASHA always promotes the first trial to reach a rung); survivors of the last
    rung run to ``max_t``.
    """
    out, alive = [], trials
    for rung in asha_rungs(grace, reduction, max_t):
        going = math.ceil(alive / reduction)
        if alive - going:
            out.append((rung, alive - going))
        alive = going
    return [*out, (max_t, alive)]


def asha_trial_epochs(trials: int, grace: int, reduction: float, max_t: int) -> int:
    """Epochs that ``trials`` competing trials run under successive halving (:func:`asha_stops`).

    Example:
        9 trials, grace 1, η 3, max_t 9: rungs 1, 3, 9; 9·1 + 3·2 + 1·6 = 21 epochs
        instead of 81.
    """
    return sum(epochs * n for epochs, n in asha_stops(trials, grace, reduction, max_t))


@dataclass(frozen=True)
class Plan:
    """What a launch would do.

    Attributes:
        spec: The study.
        cells: Every cell.
        trials: cells × samples_per_cell.
        pretrain_needed: Pretraining runs still to do (all the grid needs when unchecked).
        pretrain_present: Pretraining runs the registry already has.
        weights_checked: Whether a registry check was given.
        trial_epochs: Epochs of every trial run to max_t (no early stopping).
        trial_epochs_asha: Estimated epochs with ASHA at the study's scope.
    """

    spec: StudySpec
    cells: tuple[Cell, ...]
    trials: int
    pretrain_needed: tuple[PretrainNeed, ...]
    pretrain_present: tuple[PretrainNeed, ...]
    weights_checked: bool
    trial_epochs: int
    trial_epochs_asha: int

    @property
    def pretrain_epochs(self) -> int:
        """Epochs of the pretraining runs still needed."""
        return sum(self.spec.pretrain.epochs(n.stage) for n in self.pretrain_needed)

    def render(self) -> str:
        """The plan as a text table (``capstudy launch --dry-run``)."""
        return "\n".join([*_summary_lines(self), "", *_variant_lines(self), *_warning_lines(self)])


def plan(spec: StudySpec, have_weights: WeightsCheck | None = None) -> Plan:
    """Plan a study without running anything.

    Args:
        spec: A validated study.
        have_weights: ``(family, capacity, stage) -> bool``: whether the registry already
            holds those pretrained weights (capacity as in :class:`PretrainNeed`). None
            counts every pretraining run the grid needs as still needed.

    Returns:
        The plan.
    """
    cells = expand_cells(spec)
    tune = spec.tune
    asha = tune.asha
    trials = len(cells) * tune.samples_per_cell
    if asha.scope == "cell":
        per_cell = asha_trial_epochs(tune.samples_per_cell, asha.grace, asha.reduction, asha.max_t)
        with_asha = per_cell * len(cells)
    else:
        with_asha = asha_trial_epochs(trials, asha.grace, asha.reduction, asha.max_t)
    needed, present = [], []
    for need in pretrain_needs(spec, cells):
        has = have_weights is not None and have_weights(need.family, need.capacity, need.stage)
        (present if has else needed).append(need)
    return Plan(
        spec=spec,
        cells=tuple(cells),
        trials=trials,
        pretrain_needed=tuple(needed),
        pretrain_present=tuple(present),
        weights_checked=have_weights is not None,
        trial_epochs=trials * asha.max_t,
        trial_epochs_asha=with_asha,
    )


# --- rendering ---------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:g}"


def _grid_text(spec: StudySpec) -> str:
    parts = []
    for dim in spec.grid:
        if dim.by_family is None:
            parts.append(f"{dim.name} {len(dim.values)}")
        else:
            counts = "/".join(str(len(v)) for v in dim.by_family.values())
            parts.append(f"{dim.name} {counts} (per family)")
    return " × ".join(parts) or "(none: one cell)"


def _sampled_text(spec: StudySpec) -> str:
    parts = []
    for dim in spec.sampled:
        args = ", ".join(_number(a) if isinstance(a, float) else str(a) for a in dim.args)
        parts.append(f"{dim.name} {dim.kind} [{args}]")
    return "; ".join(parts) or "(none)"


def _summary_lines(p: Plan) -> list[str]:
    spec, tune, asha, res = p.spec, p.spec.tune, p.spec.tune.asha, p.spec.resources
    rungs = ", ".join(str(r) for r in asha_rungs(asha.grace, asha.reduction, asha.max_t))
    share = p.trial_epochs_asha / p.trial_epochs if p.trial_epochs else 0.0
    checked = "" if p.weights_checked else " (registry not checked)"
    concurrency = tune.max_concurrent or "as resources allow"
    rows = [
        ("file", str(spec.source)),
        ("grid", _grid_text(spec)),
        ("sampled (HPO)", _sampled_text(spec)),
        ("evaluate", ", ".join(spec.evaluate) or "(in-domain only)"),
        ("", ""),
        ("cells", str(len(p.cells))),
        ("trials", f"{p.trials}  ({tune.samples_per_cell} per cell, search: {tune.search})"),
        (
            "resources per trial",
            f"{_number(res.cpu)} CPU, {_number(res.gpu)} GPU; max concurrent: {concurrency}",
        ),
        (
            f"ASHA (scope {asha.scope})",
            f"grace {asha.grace}, reduction {_number(asha.reduction)}, "
            f"max_t {asha.max_t}; rungs at {rungs}",
        ),
        ("trial-epochs, no early stop", str(p.trial_epochs)),
        ("trial-epochs, with ASHA", f"≈{p.trial_epochs_asha}  ({share:.0%}, estimate)"),
        (
            "pretraining still needed",
            f"{len(p.pretrain_needed)} runs, {p.pretrain_epochs} epochs{checked}",
        ),
    ]
    if p.pretrain_present:
        rows.append(("pretraining reused", f"{len(p.pretrain_present)} runs"))
    if p.pretrain_needed or p.pretrain_present:
        rows.append(("resources per pretraining", _pretrain_resources_text(spec)))
    head = f"Study {spec.name}: {spec.task}, selected on {spec.metric} ({spec.mode})"
    return [head, *(f"  {k:<28} {v}".rstrip() for k, v in rows)]


def _pretrain_resources_text(spec: StudySpec) -> str:
    """``pretrain.resources``, or the trials' resources it defaults to (said so)."""
    res = spec.pretrain_resources
    text = f"{_number(res.cpu)} CPU, {_number(res.gpu)} GPU"
    source = "pretrain.resources" if spec.pretrain.resources else "the trials' resources"
    return f"{text} ({source}); each coco stage starts when its own imagenet stage ends"


def _variant_lines(p: Plan) -> list[str]:
    """One row per variant: its cells and trials, and the state of each pretraining stage."""
    spec = p.spec
    needed = {(n.family, n.capacity, n.stage) for n in p.pretrain_needed}
    present = {(n.family, n.capacity, n.stage) for n in p.pretrain_present}
    rows: dict[tuple, list] = {}
    for cell in p.cells:
        family, capacity, label = cell_capacity(spec, cell)
        shown = _capacity_text(spec, cell)
        params = _params_text(family, {**spec.fixed, **cell.values})
        row = rows.setdefault((family, shown), [capacity, label, 0, params])
        row[2] += 1
    header = f"  {'family':<18} {'capacity':<22} {'label':<16} {'params':>10} {'cells':>6}"
    header += f" {'trials':>7}"
    lines = ["Variants", header + "".join(f"  {s:<9}" for s in STAGES).rstrip()]
    for (family, shown), (capacity, label, n, params) in rows.items():
        status = []
        for stage in STAGES:
            key = (family, capacity, stage)
            status.append("need" if key in needed else "have" if key in present else "-")
        line = f"  {family:<18} {shown:<22} {label:<16} {params:>10} {n:>6}"
        line += f" {n * spec.tune.samples_per_cell:>7}"
        lines.append((line + "".join(f"  {s:<9}" for s in status)).rstrip())
    return lines


def _params_text(family: str, values: dict) -> str:
    """A preset variant's backbone parameters from the shipped table; "-" for a free scale
    (counted by building it: ``capstudy models`` or the analysis)."""
    if "width" in values:
        return "-"
    preset = values.get("preset", DEFAULT_PRESET)
    count = preset_backbone_params(family, int(values.get("phi", 0)), preset)
    return f"{count:,}" if count is not None else "-"


def _capacity_text(spec: StudySpec, cell: Cell) -> str:
    """The capacity dims of a cell as written (resolution included, unlike weights' ids)."""
    values = {**spec.fixed, **cell.values}
    if "width" in values:
        text = f"w={values['width']:g} d={values['depth']:g}"
        return text + (f" r={values['resolution']}" if "resolution" in values else "")
    preset = values.get("preset", DEFAULT_PRESET)
    text = f"phi={values.get('phi', 0)}"
    return text if preset == DEFAULT_PRESET else f"{text} ({preset})"


def _warning_lines(p: Plan) -> list[str]:
    return ["", *(f"warning: {w}" for w in p.spec.warnings)] if p.spec.warnings else []
