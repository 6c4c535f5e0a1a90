"""Pretraining before trials: the weights a study's grid needs, made once, as Ray tasks.

The plan lists every (family, capacity, stage) the grid's initializations need. Weights the
registry already holds (same variant, stage and pretraining settings) are reused; the rest
run as Ray tasks with ``pretrain.resources`` (default: the trials' ``resources``).

Scheduling is a dependency graph, not two waves: every ``imagenet`` stage is submitted at
once, and each ``coco`` stage is submitted with its own variant's ``imagenet`` task's
ObjectRef as an argument, so Ray starts it as soon as that one stage ends (S-3's ``coco``
runs while B0's longer ``imagenet`` is still going). A ``coco`` stage whose ``imagenet``
weights are already registered starts at once. Every stage that can finish does, so a
relaunch reuses it, and the failures are reported together at the end; a ``coco`` stage
whose ``imagenet`` stage failed never runs, and its error names both.

A lost stage (its process or node killed) is rerun by Ray (``max_retries``). The run of the
lost attempt could not end itself: each stage's runs are tagged with its Ray task, the same
across retries, and once the task has ended the driver ends any of them still ``RUNNING`` as
``FAILED``, its cause ``process or node lost`` (:func:`settle_lost_runs`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ray

from capstudy.errors import CapstudyError
from capstudy.study import StudySpec
from capstudy.study.cells import expand_cells
from capstudy.study.plan import PretrainNeed, pretrain_needs

# (need, settings, roots, tracking_uri) -> path of the weights; tests inject a fast one.
PretrainFn = Callable[[PretrainNeed, dict, dict, str], str]


def _pretrain(need: PretrainNeed, settings: dict, roots: dict, tracking_uri: str) -> str:
    """Make (or reuse) one need's weights; reuse also marks them the variant's current ones."""
    from capstudy import keys
    from capstudy.pretrain import ensure_weights

    task = {keys.T_PRETRAIN_TASK: ray.get_runtime_context().get_task_id()}
    path = ensure_weights(
        need.variant,
        need.stage,
        settings=settings,
        roots=roots,
        tracking_uri=tracking_uri,
        run_tags=task,
    )
    return str(path)


def _stage_task(
    fn: PretrainFn,
    need: PretrainNeed,
    settings: dict,
    roots: dict,
    tracking_uri: str,
    after: str | None = None,
) -> str:
    """One stage as a Ray task. ``after`` is the ``imagenet`` task's result: passing its
    ObjectRef makes Ray hold this task until that stage has ended (the value itself is
    unused; the ``coco`` stage finds those weights in the registry)."""
    del after
    return fn(need, settings, roots, tracking_uri)


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
    settings = spec.pretrain.settings()
    roots = dict(spec.data)

    def have(family: str, capacity: Any, stage: str) -> bool:
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


def pretrain_resources_ask(spec: StudySpec) -> tuple[float, float] | None:
    """``pretrain.resources`` (cpu, gpu) to check against the nodes, or None: only when the
    study sets them and its grid pretrains (else the trials' check covers them)."""
    res = spec.pretrain.resources
    if res is None or not pretrain_needs(spec, expand_cells(spec)):
        return None
    return res.cpu, res.gpu


def reuser(
    spec: StudySpec, tracking_uri: str, fingerprints: dict[str, str] | None = None
) -> Callable[[PretrainNeed], bool]:
    """``need -> bool``: the registry holds weights of these settings (then they become the
    variant's current ones, which trials load). Nothing is downloaded into the driver."""
    from capstudy import registry
    from capstudy.pretrain import find_weights

    settings, roots = spec.pretrain.settings(), dict(spec.data)

    def reuse(need: PretrainNeed) -> bool:
        found = find_weights(
            need.variant,
            need.stage,
            settings=settings,
            roots=roots,
            tracking_uri=tracking_uri,
            fingerprints=fingerprints,
        )
        if found is not None:
            registry.set_current(found, tracking_uri)
        return found is not None

    return reuse


def run_pretraining(
    spec: StudySpec,
    tracking_uri: str,
    say: Callable[[str], None] = print,
    fingerprints: dict[str, str] | None = None,
    pretrain_fn: PretrainFn = _pretrain,
    reuse: Callable[[PretrainNeed], bool] | None = None,
) -> list[PretrainNeed]:
    """Make every missing pretrained weight the study needs; return what was made.

    Args:
        spec: The study.
        tracking_uri: The MLflow store holding the registry.
        say: Where progress lines go.
        fingerprints: The pretraining datasets' fingerprints from the launch's node probe,
            so the driver decides what to reuse without listing (or having) the data.
        pretrain_fn: Makes one need's weights (the real stage by default; tests pass a
            fast one to check the scheduling with real Ray).
        reuse: ``need -> bool``: whether the registry holds that need's weights, making
            them the variant's current ones if so (default: :func:`reuser`).

    Raises:
        CapstudyError: One or more stages failed (their runs are FAILED in MLflow); every
            failure is listed, after every stage that could finish has finished.
    """
    needs = pretrain_needs(spec, expand_cells(spec))
    if not needs:
        return []
    settings, roots = spec.pretrain.settings(), dict(spec.data)
    reuse = reuse or reuser(spec, tracking_uri, fingerprints)
    # Trials load the registry's "current" version; reusing makes these current.
    present = [n for n in needs if reuse(n)]
    missing = [n for n in needs if n not in present]
    if present:
        say(f"pretraining: reusing {len(present)} registered weights")
    if not missing:
        return []
    refs = _submit(spec, missing, settings, roots, tracking_uri, pretrain_fn, say)
    # Only the real stage makes runs to settle (an injected one makes none).
    _collect(refs, say, tracking_uri if pretrain_fn is _pretrain else None)
    return missing


def _submit(spec, missing, settings, roots, uri, fn, say) -> dict[PretrainNeed, Any]:
    """Submit every missing stage; each ``coco`` task takes its ``imagenet`` task's ref."""
    res = spec.pretrain_resources
    task = ray.remote(num_cpus=res.cpu, num_gpus=res.gpu, max_retries=1)(_stage_task)
    refs: dict[PretrainNeed, Any] = {}
    imagenet: dict[tuple, Any] = {}
    # pretrain_needs lists imagenet needs first, so a coco need finds its parent's ref.
    for need in missing:
        parent = imagenet.get((need.family, need.capacity)) if need.stage == "coco" else None
        refs[need] = task.remote(fn, need, settings, roots, uri, parent)
        if need.stage == "imagenet":
            imagenet[(need.family, need.capacity)] = refs[need]
    for stage in ("imagenet", "coco"):
        batch = [n.label for n in missing if n.stage == stage]
        if batch:
            say(f"pretraining: {len(batch)} {stage} run(s) as Ray tasks: {', '.join(batch)}")
    say(
        f"pretraining: {res.cpu:g} CPU, {res.gpu:g} GPU per run; each coco stage starts when "
        "its own imagenet stage ends"
    )
    return refs


def settle_lost_runs(task_id: str, tracking_uri: str) -> int:
    """End the runs of a finished pretraining task that are still ``RUNNING`` (attempts whose
    process or node was lost: Ray reran the stage, or gave up) as ``FAILED``; returns how many."""
    from capstudy import keys, tracking
    from capstudy.status.causes import LOST

    query = f"tags.`{keys.T_PRETRAIN_TASK}` = '{task_id}' and attributes.status = 'RUNNING'"
    lost = tracking.find_runs(keys.PRETRAIN_EXPERIMENT, query, tracking_uri)
    cause = f"{LOST}: the pretraining stage's process ended before its run did; Ray reran it"
    for run in lost:
        tracking.set_tags(run.info.run_id, {keys.T_ERROR: cause}, tracking_uri)
        tracking.end_run(run.info.run_id, "FAILED", tracking_uri)
    return len(lost)


def _collect(refs: dict[PretrainNeed, Any], say: Callable[[str], None], uri: str | None) -> None:
    """Wait for every stage, saying each as it ends; raise one error listing all failures.
    With ``uri``, the runs of lost attempts of each ended stage are settled there."""
    start = time.monotonic()
    by_ref = {ref: need for need, ref in refs.items()}
    pending = list(by_ref)
    failed: dict[PretrainNeed, BaseException] = {}
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        need = by_ref[done[0]]
        lost = settle_lost_runs(done[0].task_id().hex(), uri) if uri else 0
        if lost:
            say(f"pretraining: {need.label} {need.stage}: {lost} lost attempt(s) marked FAILED")
        try:
            ray.get(done[0])
        except ray.exceptions.RayError as exc:
            failed[need] = exc
            say(f"pretraining: {need.label} {need.stage} FAILED")
            continue
        say(f"pretraining: {need.label} {need.stage} done ({time.monotonic() - start:.0f} s)")
    if failed:
        lost = {(n.family, n.capacity, n.stage) for n in failed}
        lines = [_failure_line(need, exc, lost) for need, exc in failed.items()]
        raise CapstudyError(
            f"{len(failed)} pretraining stage(s) failed (the stages that finished are "
            "registered and a relaunch reuses them):\n  " + "\n  ".join(lines)
        ) from next(iter(failed.values()))


def _failure_line(need: PretrainNeed, exc: BaseException, lost: set[tuple]) -> str:
    """One failure; a ``coco`` stage whose ``imagenet`` stage failed says so, not run."""
    capacity = f"phi={need.capacity}" if isinstance(need.capacity, int) else str(need.capacity)
    name = f"{need.stage} stage of {need.label} ({need.family} {capacity})"
    if need.stage == "coco" and (need.family, need.capacity, "imagenet") in lost:
        return (
            f"{name}: not run, because the imagenet stage of {need.label} it starts from "
            f"failed ({_last_line(exc)})"
        )
    return f"{name}: {_last_line(exc)}"


def _last_line(exc: BaseException) -> str:
    """The cause of a Ray task error: its last non-empty line (Ray prepends a traceback)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
