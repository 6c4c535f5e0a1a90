"""The ``sequential:`` section: seeds in planned looks (pure module).

A group-sequential study runs its seeds in rounds ("looks"); after each, the shared-threshold
test decides whether the answer is in (stop: threshold), hopeless (stop: futility) or needs
the next round's seeds. The boundaries are computed before the first trial
(:mod:`capstudy.analysis.sequential`); this module only checks what the file asks for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from capstudy.study.parse import number_in, one_of, section
from capstudy.study.source import SourceDoc
from capstudy.study.spec import GridDim, SequentialSpec, StudySpec

SPENDING = ("obf", "pocock")
KEYS = ("looks", "alpha", "spending", "futility", "simulations")


def parse_sequential(
    doc: SourceDoc, value: Any, grid: tuple[GridDim, ...]
) -> SequentialSpec | None:
    """``sequential: {looks, alpha, spending, futility, simulations}`` (None: no section)."""
    if value is None:
        return None
    path = ("sequential",)
    sec = section(doc, path, value, KEYS)
    looks = sec.get("looks")
    if not isinstance(looks, list) or len(looks) < 2:
        raise doc.error((*path, "looks"), "must list at least two seed counts, e.g. [3, 5, 8]")
    for i, n in enumerate(looks):
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise doc.error((*path, "looks", i), f"must be a seed count >= 2, got {n!r}")
        if i and n <= looks[i - 1]:
            raise doc.error((*path, "looks", i), "looks must grow: each adds seeds")
    seed = next((d for d in grid if d.name == "seed"), None)
    if seed is None or seed.by_family is not None:
        raise doc.error(
            (*path, "looks"),
            f"a sequential study needs space.seed: {{grid_search: [...]}} with {looks[-1]} "
            "seeds (the looks take them in file order)",
        )
    if len(seed.values) != looks[-1]:
        raise doc.error(
            (*path, "looks"),
            f"the last look must use every seed: space.seed lists {len(seed.values)} "
            f"seeds, the last look {looks[-1]}",
        )
    alpha = number_in(doc, (*path, "alpha"), sec.get("alpha", 0.05), 0.0, 0.5)
    futility = sec.get("futility", 0.5)
    if futility is not None:
        futility = number_in(doc, (*path, "futility"), futility, alpha, 1.0)
    simulations = sec.get("simulations", 60)
    if isinstance(simulations, bool) or not isinstance(simulations, int) or simulations < 20:
        raise doc.error((*path, "simulations"), f"must be an integer >= 20, got {simulations!r}")
    return SequentialSpec(
        looks=tuple(looks),
        alpha=alpha,
        spending=one_of(doc, (*path, "spending"), sec.get("spending", "obf"), SPENDING),
        futility=futility,
        simulations=simulations,
    )


def spec_for_look(spec: StudySpec, look: int) -> StudySpec:
    """The study as look ``look`` (1-based) launches it: only the seeds that look adds.

    Cells, trial keys and the parent run stay the study's (a cell id names its seed), so the
    looks' trials are one study in MLflow and in the analysis.
    """
    seq = spec.sequential
    if seq is None:
        raise ValueError(f"study {spec.name!r} has no sequential section")
    grid = tuple(
        replace(d, values=seq.seeds_of_look(d.values, look)) if d.name == "seed" else d
        for d in spec.grid
    )
    return replace(spec, grid=grid)
