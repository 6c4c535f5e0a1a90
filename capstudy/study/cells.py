"""Cells of a study: the grid's cartesian product, and the trial dicts inside each (pure).

A cell is one value of every grid dim (family, phi, init, train domain, seed, …). ASHA and
the analysis compare trials only within a cell; the trials of a cell differ only in their
sampled (HPO) values. ``search: random`` draws them with :meth:`Cell.trial_dicts`; the Ray
driver draws them with Ray or Optuna from :meth:`StudySpec.sampled_space` and merges them
with :meth:`Cell.trial_dict`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from capstudy.config import ConfigError, TrialConfig
from capstudy.study.checks import DEFAULT_FAMILY, trial_name
from capstudy.study.source import SourceDoc
from capstudy.study.spec import StudySpec

# Cell ids show ``train``, not ``train_domain``: they are read next to the study file.
_ID_SEPARATOR = "|"


@dataclass(frozen=True)
class Cell:
    """One grid cell.

    Attributes:
        values: Grid dim -> value, in the spec's grid order (study-file names, ``train``).
        index: Position in :func:`expand_cells` order.
    """

    values: dict[str, Any]
    index: int = 0

    def __hash__(self) -> int:
        return hash(self.cell_hash)

    @property
    def cell_id(self) -> str:
        """Readable stable id, e.g. ``efficientnet_b0|phi=-4|init=imagenet|seed=0``.

        The family is written bare (it leads every id); other dims as ``key=value`` in grid
        order. A study without grid dims has the single cell ``all``.
        """
        parts = [_fmt(v) if k == "family" else f"{k}={_fmt(v)}" for k, v in self.values.items()]
        return _ID_SEPARATOR.join(parts) or "all"

    @property
    def cell_hash(self) -> str:
        """Short hash of the values, safe in paths and run names (``c`` + 10 hex digits)."""
        blob = json.dumps(self.values, sort_keys=True).encode()
        return "c" + hashlib.sha256(blob).hexdigest()[:10]

    def trial_dict(self, spec: StudySpec, sample: Mapping[str, Any] | None = None) -> dict:
        """The merged trial dict: fixed + this cell + one HPO sample + study structure.

        Args:
            spec: The study.
            sample: Sampled dim -> value (study-file names); dims left out take the trial
                default.

        Returns:
            A JSON-friendly dict that :meth:`TrialConfig.from_dict` accepts.

        Raises:
            ValueError: ``sample`` names a key that is not a sampled dim.
        """
        sample = dict(sample or {})
        extra = sorted(set(sample) - set(spec.hpo_names))
        if extra:
            raise ValueError(f"sample keys {extra} are not sampled dims of {spec.name!r}")
        merged: dict[str, Any] = {}
        for source in (spec.fixed, self.values, sample):
            merged.update({trial_name(k): v for k, v in source.items()})
        merged["task"] = spec.task
        merged["eval_domains"] = list(spec.evaluate)
        if spec.data:
            merged["data_roots"] = dict(sorted(spec.data.items()))
        merged["hpo_keys"] = list(spec.hpo_names)
        return merged

    def trial_dicts(self, spec: StudySpec, rng: random.Random) -> list[dict]:
        """``samples_per_cell`` trial dicts with sampled values drawn at random from ``rng``."""
        return [
            self.trial_dict(spec, {d.name: d.sample(rng) for d in spec.sampled})
            for _ in range(spec.tune.samples_per_cell)
        ]


def _fmt(value: Any) -> str:
    """Stable text of a grid value (``true``, ``0.5``, ``-4``, ``synth_a/rgb``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def expand_cells(spec: StudySpec) -> list[Cell]:
    """The cartesian product of the grid dims, in a stable order.

    The first grid dim varies slowest (family, then phi, init, train, seed, then other dims
    by name); values keep their file order. Per-family dims take that family's values.

    Args:
        spec: A validated study.

    Returns:
        Every cell, indexed in that order.
    """
    rows: list[dict[str, Any]] = [{}]
    default_family = spec.fixed.get("family", DEFAULT_FAMILY)
    for dim in spec.grid:
        rows = [
            {**row, dim.name: value}
            for row in rows
            for value in dim.values_for(row.get("family", default_family))
        ]
    return [Cell(values=row, index=i) for i, row in enumerate(rows)]


def check_cells(spec: StudySpec, doc: SourceDoc) -> None:
    """Every cell, merged with fixed and sampled values, must be a valid trial config.

    Each cell is checked with every sampled dim at its first option or lower bound; then
    the first cell with each other option and upper bound. Single values were checked where
    they are written; this catches combinations (e.g. a fixed key that clashes with a cell).

    Raises:
        StudyError: At the ``space`` section, naming the cell and the trial error.
    """
    low = {d.name: d.probes()[0] for d in spec.sampled}
    cells = expand_cells(spec)
    samples = [low] + [{**low, d.name: probe} for d in spec.sampled for probe in d.probes()[1:]]
    for i, cell in enumerate(cells):
        for sample in samples if i == 0 else samples[:1]:
            try:
                TrialConfig.from_dict(cell.trial_dict(spec, sample), source=cell.cell_id)
            except ConfigError as exc:
                raise doc.error(("space",), f"cell {exc}") from None
