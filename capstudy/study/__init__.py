"""The study compiler (pure: stdlib + PyYAML): a study file becomes a validated plan.

One public entry, :func:`load`, turns a study name or path into a :class:`StudySpec`; cells,
the plan and the ASHA rungs are derived from it. The modules, in data-flow order:

- :mod:`~capstudy.study.source`: YAML with line numbers; :class:`StudyError` names key path,
  file and line.
- :mod:`~capstudy.study.parse` and :mod:`~capstudy.study.checks`: each section parsed and
  checked into the types of :mod:`~capstudy.study.spec`.
- :mod:`~capstudy.study.cells`: the grid's cells and the trial dicts inside each.
- :mod:`~capstudy.study.plan`: what a launch will run (``--dry-run``), pretraining needs, ASHA.
- :mod:`~capstudy.study.loader`: finding study files by name and assembling the spec.

:class:`~capstudy.config.TrialConfig`, the contract between a study and the engine, lives in
:mod:`capstudy.config`, which both sides import.
"""

from __future__ import annotations

from capstudy.study.cells import Cell, expand_cells
from capstudy.study.loader import available_studies, load_study, parse_study_text
from capstudy.study.plan import Plan, PretrainNeed, asha_rungs, plan, pretrain_needs
from capstudy.study.source import StudyError
from capstudy.study.spec import (
    AshaSpec,
    GridDim,
    PretrainSpec,
    Resources,
    SampledDim,
    StudySpec,
    StudyWarning,
    TuneSpec,
)

#: The one public entry: a study name (``smoke``) or a path to a study file -> StudySpec.
load = load_study

__all__ = [
    "AshaSpec",
    "Cell",
    "GridDim",
    "Plan",
    "PretrainNeed",
    "PretrainSpec",
    "Resources",
    "SampledDim",
    "StudyError",
    "StudySpec",
    "StudyWarning",
    "TuneSpec",
    "asha_rungs",
    "available_studies",
    "expand_cells",
    "load",
    "load_study",
    "parse_study_text",
    "plan",
    "pretrain_needs",
]
