"""Typed pieces of a study spec: grid and sampled dims, tuning, resources, pretraining (pure).

Plain frozen dataclasses, free of parsing, so the Ray driver and the planner can use them
without the YAML machinery (:mod:`capstudy.study.parse` builds them from a study file).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from capstudy.recipes import recipe


@dataclass(frozen=True)
class GridDim:
    """A ``grid_search`` dim: every value makes its own cells.

    Attributes:
        name: Study-file key (``phi``, ``init``, ``train``, ``seed``, …).
        values: All values in file order (for a per-family dim, the union over families).
        by_family: For a per-family dim (``phi: {grid_search: {efficientnet_b0: [...]}}``),
            family -> its values; None when every family takes ``values``.
    """

    name: str
    values: tuple[Any, ...]
    by_family: dict[str, tuple[Any, ...]] | None = None

    def values_for(self, family: str) -> tuple[Any, ...]:
        """The values this dim takes in cells of ``family``."""
        return self.values if self.by_family is None else self.by_family[family]


@dataclass(frozen=True)
class SampledDim:
    """A sampled (HPO) dim, drawn inside each cell.

    Attributes:
        name: Study-file key (``lr``, ``weight_decay``, …).
        kind: ``choice``, ``uniform``, ``loguniform`` or ``randint``.
        args: Options for ``choice``; ``(lo, hi)`` otherwise (``randint``: both inclusive).
    """

    name: str
    kind: str
    args: tuple[Any, ...]

    def sample(self, rng: random.Random) -> Any:
        """One random draw (what ``search: random`` does)."""
        if self.kind == "choice":
            return rng.choice(self.args)
        lo, hi = self.args
        if self.kind == "uniform":
            return rng.uniform(lo, hi)
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(lo), math.log(hi)))
        return rng.randint(lo, hi)

    def probes(self) -> tuple[Any, ...]:
        """Values that stand for the whole range when validating (options or both bounds)."""
        return self.args


@dataclass(frozen=True)
class AshaSpec:
    """ASHA early stopping.

    Attributes:
        grace: Epochs every trial runs before it can be stopped (first rung).
        reduction: Reduction factor eta: about 1/eta of the trials pass each rung.
        scope: ``cell`` (compare only trials of one cell) or ``global`` (warns).
        max_t: Epoch at which every trial stops (default: the study's ``epochs``).
    """

    grace: int = 1
    reduction: float = 3.0
    scope: str = "cell"
    max_t: int = 1


@dataclass(frozen=True)
class TuneSpec:
    """How the driver runs the trials.

    Attributes:
        samples_per_cell: HPO samples (trials) per cell.
        search: ``random`` or ``optuna`` (TPE through Ray's Optuna integration).
        asha: Early stopping.
        max_concurrent: Cap on trials running at once (None: as resources allow).
    """

    samples_per_cell: int
    search: str
    asha: AshaSpec
    max_concurrent: int | None = None


@dataclass(frozen=True)
class Resources:
    """Per-trial resources (Ray): CPUs and a GPU share (0.25 = four trials per GPU)."""

    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class PretrainSpec:
    """How the pretraining stages run for this study.

    Attributes:
        imagenet: Dataset of the classification stage (ImageNet class-per-folder format).
        coco: Dataset of the detection stage (COCO instances format).
        epochs_imagenet: Epochs of the classification stage.
        epochs_coco: Epochs of the detection stage.
        image_size_imagenet: Input size of the classification stage.
        image_size_coco: Input size of the detection stage.
        max_train_images: Cap on training images per epoch in both stages (0 = all).
        resources: CPU and GPU of each pretraining task; None means the trials'
            ``resources`` (see :meth:`StudySpec.pretrain_resources`). How a stage runs, not
            what it learns: not part of :meth:`settings` or :meth:`fingerprint`.
    """

    imagenet: str = "imagenet"
    coco: str = "coco"
    epochs_imagenet: int = recipe("pretrain", "imagenet")["epochs"]
    epochs_coco: int = recipe("pretrain", "coco")["epochs"]
    image_size_imagenet: int = recipe("pretrain", "imagenet")["image_size"]
    image_size_coco: int = recipe("pretrain", "coco")["image_size"]
    max_train_images: int = 0
    resources: Resources | None = None

    def epochs(self, stage: str) -> int:
        """Epochs of ``stage`` (``imagenet`` or ``coco``)."""
        return self.epochs_imagenet if stage == "imagenet" else self.epochs_coco

    def settings(self) -> dict[str, Any]:
        """What the stages learn from, as the dict :mod:`capstudy.pretrain` takes.

        ``resources`` is left out: a stage given a whole GPU makes the same weights, so it
        must not change what the registry reuses.
        """
        out = asdict(self)
        del out["resources"]
        return out

    def fingerprint(self) -> str:
        """Short hash of these settings: weights made with other settings are not the same."""
        text = json.dumps(self.settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SequentialSpec:
    """A group-sequential study: seeds run in planned looks until the answer is decided.

    Attributes:
        looks: Cumulative seeds at each look (the first ``looks[k]`` values of the seed grid
            dim); the last is every seed of the grid.
        alpha: The shared-threshold test's overall false-threshold rate, spent across looks.
        spending: ``obf`` (O'Brien-Fleming type, Lan-DeMets: almost nothing spent early) or
            ``pocock`` (Pocock type: spent evenly).
        futility: An interim look stops for futility when the shared test's p-value is at
            least this (0.5: the statistic is below its null median, Wieand's rule); None
            never stops for futility. Non-binding: it can only lower the false-threshold rate.
        simulations: Simulated null studies that estimate the statistic's correlation
            across looks under the study's own grid (the boundaries come from it).
    """

    looks: tuple[int, ...]
    alpha: float = 0.05
    spending: str = "obf"
    futility: float | None = 0.5
    simulations: int = 60

    def seeds_of_look(self, seeds: tuple[Any, ...], look: int) -> tuple[Any, ...]:
        """The seed values look ``look`` (1-based) adds to those of the looks before it."""
        start = self.looks[look - 2] if look > 1 else 0
        return tuple(seeds[start : self.looks[look - 1]])


class StudyWarning(UserWarning):
    """A study file asks for something allowed but risky (e.g. global ASHA)."""


@dataclass(frozen=True)
class StudySpec:
    """A validated study file. Treat the dict fields as read-only.

    Attributes:
        name: Study name (MLflow experiment name); defaults to the file's stem.
        task: ``detection`` or ``classification``.
        metric: Selection metric, an in-domain ``val/`` metric, e.g. ``val/map50``.
        mode: ``max`` or ``min``.
        fixed: Trial keys set for every trial (study-file names, e.g. ``train``).
        grid: Grid dims in canonical order (family, phi, …, init, train, seed, others).
        sampled: Sampled (HPO) dims in file order.
        evaluate: Evaluation domains (``dataset/modality``) every trial reports.
        tune: Samples per cell, search algorithm, ASHA and concurrency.
        resources: CPU and (fractional) GPU per trial.
        data: Dataset name -> absolute local folder (becomes ``TrialConfig.data_roots``).
        pretrain: How the pretraining stages are run for this study.
        source: The study file.
        warnings: Messages the CLI should print (already emitted with ``warnings.warn``).
        sequential: The planned looks of a group-sequential study (None: one fixed launch).
    """

    name: str
    task: str
    metric: str
    mode: str
    fixed: dict[str, Any]
    grid: tuple[GridDim, ...]
    sampled: tuple[SampledDim, ...]
    evaluate: tuple[str, ...]
    tune: TuneSpec
    resources: Resources
    data: dict[str, str]
    pretrain: PretrainSpec
    source: Path
    warnings: tuple[str, ...] = field(default=())
    sequential: SequentialSpec | None = None

    @property
    def pretrain_resources(self) -> Resources:
        """Resources of each pretraining task: ``pretrain.resources``, else the trials'."""
        return self.pretrain.resources or self.resources

    @property
    def grid_names(self) -> tuple[str, ...]:
        """Names of the grid dims, in cell order."""
        return tuple(d.name for d in self.grid)

    @property
    def hpo_names(self) -> tuple[str, ...]:
        """Names of the sampled dims (the trial's ``hpo_keys``)."""
        return tuple(d.name for d in self.sampled)

    def sampled_space(self) -> dict[str, tuple[str, tuple[Any, ...]]]:
        """Sampled dims in a library-neutral form: name -> (kind, args).

        ``kind`` is ``choice`` (args: the options), ``uniform`` / ``loguniform``
        (args: lo, hi) or ``randint`` (args: lo, hi, both inclusive: Ray's
        ``tune.randint(lo, hi + 1)``, Optuna's ``suggest_int(name, lo, hi)``).
        """
        return {d.name: (d.kind, d.args) for d in self.sampled}

    @property
    def is_free_scale(self) -> bool:
        """True when capacity is a free (width, depth, resolution) triple, not ``phi``."""
        return "width" in self.fixed or "width" in self.grid_names
