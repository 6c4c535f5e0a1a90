"""Pretraining before trials: the weights a study's grid needs, made once, as Ray tasks.

The plan lists every (family, capacity, stage) the grid's initializations need. Weights the
registry already holds (same variant, stage and pretraining settings) are reused; the rest
run as Ray tasks with the study's per-trial resources -- all ``imagenet`` stages in
parallel, then all ``coco`` stages, which start from the ``imagenet`` weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import ray

from capstudy.study import StudySpec
from capstudy.study.cells import expand_cells
from capstudy.study.plan import PretrainNeed, pretrain_needs


def _pretrain(need: PretrainNeed, settings: dict, roots: dict, tracking_uri: str) -> str:
    """Make (or reuse) one need's weights; reuse also marks them the variant's current ones."""
    from capstudy.pretrain import ensure_weights

    path = ensure_weights(
        need.variant, need.stage, settings=settings, roots=roots, tracking_uri=tracking_uri
    )
    return str(path)


def have_weights_fn(
    spec: StudySpec,
    tracking_uri: str,
    problems: list[str] | None = None,
    fingerprints: dict[str, str] | None = None,
) -> Callable[[str, Any, str], bool]:
    """A ``have_weights(family, capacity, stage)`` check against the registry (for plans).

    Args:
        spec: The study.
        tracking_uri: The MLflow store holding the registry.
        problems: If given, a check that cannot run (say, the pretraining dataset is not on
            this machine yet) answers False and appends the reason here instead of raising,
            so a dry run still prints its plan.
        fingerprints: The pretraining datasets' fingerprints as the nodes computed them
            (``clusterchecks.cluster_checks``); without them this machine lists the data.
    """
    settings = asdict(spec.pretrain)
    roots = dict(spec.data)

    def have(family: str, capacity: Any, stage: str) -> bool:
        from capstudy.errors import CapstudyError
        from capstudy.pretrain import find_weights

        need = PretrainNeed(family, capacity, stage, "")
        try:
            found = find_weights(
                need.variant,
                stage,
                settings=settings,
                roots=roots,
                tracking_uri=tracking_uri,
                fingerprints=fingerprints,
            )
        except CapstudyError as exc:
            if problems is None:
                raise
            if str(exc) not in problems:
                problems.append(str(exc))
            return False
        return found is not None

    return have


def run_pretraining(
    spec: StudySpec,
    tracking_uri: str,
    say: Callable[[str], None] = print,
    fingerprints: dict[str, str] | None = None,
) -> list[PretrainNeed]:
    """Make every missing pretrained weight the study needs; return what was made.

    ``fingerprints``: the pretraining datasets' fingerprints from the launch's node probe,
    so the driver decides what to reuse without listing (or having) the data.

    Raises:
        ray.exceptions.RayTaskError: A pretraining task failed (its run is FAILED in MLflow).
    """
    from capstudy import registry
    from capstudy.pretrain import find_weights

    needs = pretrain_needs(spec, expand_cells(spec))
    if not needs:
        return []
    settings = asdict(spec.pretrain)
    roots = dict(spec.data)
    found = {
        n: find_weights(
            n.variant,
            n.stage,
            settings=settings,
            roots=roots,
            tracking_uri=tracking_uri,
            fingerprints=fingerprints,
        )
        for n in needs
    }
    missing = [n for n in needs if found[n] is None]
    present = [n for n in needs if found[n] is not None]
    if present:
        # Trials load the registry's "current" version; reusing makes these current.
        say(f"pretraining: reusing {len(present)} registered weights")
        for need in present:
            registry.set_current(found[need], tracking_uri)
    if not missing:
        return []
    task = ray.remote(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu, max_retries=1)(
        _pretrain
    )
    for stage in ("imagenet", "coco"):
        batch = [n for n in missing if n.stage == stage]
        if batch:
            labels = ", ".join(n.label for n in batch)
            say(f"pretraining: {len(batch)} {stage} run(s) as Ray tasks: {labels}")
            ray.get([task.remote(n, settings, roots, tracking_uri) for n in batch])
    return missing
