"""``capstudy launch``: a study file -> pretraining -> Ray Tune trials -> MLflow runs.

One study = one Ray Tune experiment at ``<storage>/<study name>`` and one MLflow parent run.
``--resume`` restores the Ray experiment (finished trials are not rerun; unfinished ones
continue from their last checkpoint) and continues the same parent and child runs. Starting a
study again without ``--resume`` archives the old experiment folder (nothing is deleted)
and opens a new parent run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from rich.console import Console

from capstudy import paths, tracking
from capstudy.cost import cost_lines
from capstudy.errors import CapstudyError
from capstudy.launch.asha import CellASHA
from capstudy.launch.clusterchecks import (
    ERROR,
    WARN,
    cluster_checks,
    raise_on_errors,
    render,
    storage_checks,
    tracking_checks,
)
from capstudy.launch.dataprobe import check_local_datasets, data_needs
from capstudy.launch.latency import log_latencies
from capstudy.launch.live import LiveView
from capstudy.launch.looks import looks_summary, run_looks
from capstudy.launch.looks import plan_line as looks_plan_line
from capstudy.launch.pretraining import have_weights_fn, pretrain_resources_ask, run_pretraining
from capstudy.launch.recorder import StudyRecorder
from capstudy.launch.scheduler import CellASHAScheduler, load_asha
from capstudy.launch.searcher import TRIAL_KEY, CellSearcher
from capstudy.launch.studyrun import (
    count_trials,
    end_state,
    parent_run,
    read_state,
    write_state,
)
from capstudy.launch.summary import (
    check_retry_batch_size,
    print_results,
    retry_changes,
    storage_refusal,
)
from capstudy.launch.trainable import capstudy_trainable
from capstudy.storage import Place, place
from capstudy.study import StudySpec, load
from capstudy.study.cells import expand_cells
from capstudy.study.plan import plan
from capstudy.util import console as make_console

# Env vars a local launch's workers get from the driver. A cluster's nodes keep their own
# (set where `ray start` ran): home and cache are node-local by design (docs/guide/scaling-out.md).
_FORWARDED_ENV = ("CAPSTUDY_HOME", "CAPSTUDY_DATA", "CAPSTUDY_CACHE")


@dataclass(frozen=True)
class LaunchOptions:
    """What ``capstudy launch`` was asked for."""

    space: str
    address: str | None = None
    tracking_uri: str | None = None
    storage: str | None = None
    resume: bool = False
    dry_run: bool = False
    max_concurrent: int | None = None
    max_failures: int = 2
    seed: int = 0
    retry_failed: bool = False  # rerun only the FAILED trials of the latest launch
    retry_batch_size: int | None = None  # ...with this batch size (after out of memory)
    devices: int | None = None  # for the dry run's wall-time estimate


@dataclass(frozen=True)
class LaunchOutcome:
    """How a launch ended."""

    study: str
    parent_run_id: str | None
    trials_total: int
    trials_done: int
    trials_failed: int
    status: str
    experiment_path: Path | str | None  # a Path for local storage, the URI for a remote one
    # A sequential study: where it stands, e.g. "look 1 of 2 (2 of 4 seeds): futility".
    looks: str = ""


def launch(
    opts: LaunchOptions, console: Console | None = None, trainable_fn: Any = None
) -> LaunchOutcome:
    """Run (or plan, or resume) a study. See the module docstring.

    ``trainable_fn`` replaces the training trial (the full_grid-shape benchmark and its test
    drive the real driver with a scripted one); None runs :func:`capstudy_trainable`.
    """
    console = console or make_console()
    check_retry_batch_size(opts.retry_failed, opts.retry_batch_size)
    spec = load(opts.space)
    for message in spec.warnings:
        console.print(f"[yellow]warning:[/] {message}")
    uri = tracking.configure(opts.tracking_uri)
    checks = tracking_checks(uri, opts.address)
    if opts.dry_run:
        return _dry_run(spec, opts, uri, checks, console)
    storage = place(opts.storage or paths.ray_storage())  # a local path or a pyarrow URI
    checks += storage_checks(storage)  # a URI: a probe object written and read back here
    raise_on_errors(checks)  # before anything starts: no Ray, no run, no folder
    # A scripted trainable reads no data and needs no pretrained weights.
    scripted = trainable_fn is not None
    if opts.address is None and not scripted:
        check_local_datasets(spec)  # on a cluster the data lives on the workers
    exp_path = storage / spec.name
    total = len(expand_cells(spec)) * spec.tune.samples_per_cell
    finished = _finished_before(spec, opts, exp_path, total, console)
    if finished is not None:
        return finished
    _ray_init(opts.address, uri)
    # One probe per node: storage, tracking, and the data (present, readable, equal copies,
    # fingerprinted there: the driver never lists a dataset).
    needs = [] if scripted else data_needs(spec)
    res = spec.resources
    checks, fingerprints = cluster_checks(
        storage, uri, res.cpu, res.gpu, needs, dict(spec.data), pretrain_resources_ask(spec)
    )
    for check in checks:
        if check.level == WARN:
            console.print(f"[yellow]warning:[/] {check.setting}: {check.message}")
    raise_on_errors(checks)
    parent = parent_run(spec, opts, uri, exp_path, console, storage)
    status, started, counts = "FAILED", time.monotonic(), {}
    recorder = StudyRecorder(spec.name, uri, parent, spec.metric, spec.mode).attach()
    try:
        if not scripted:
            run_pretraining(
                spec,
                uri,
                say=lambda m: console.print(f"[cyan]{m}[/]"),
                fingerprints=fingerprints,
            )

        def fit(sub: StudySpec, path: Place, resume: bool) -> list[Any]:
            tuner = build_tuner(sub, opts, path, recorder, trainable_fn, resume)
            trials = tuner.fit()._experiment_analysis.trials
            recorder.reconcile(trials)
            return trials

        looks = ""
        if spec.sequential is None:
            done, failed = count_trials(fit(spec, exp_path, opts.resume or opts.retry_failed))
            status = "FINISHED" if done + failed >= total else "KILLED"
        else:
            state = read_state(exp_path)
            before = {int(d["look"]) for d in state.get("looks", [])}
            trials, ended = run_looks(
                spec,
                exp_path,
                parent,
                uri,
                state,
                lambda s: write_state(exp_path, s),
                fit,
                resume=opts.resume,
                seed=opts.seed,
                console=console,
            )
            done, failed = count_trials(trials)
            # Looks decided by an earlier launch ran their trials then; their records say
            # how many (records made before the counts were recorded add nothing).
            for record in state.get("looks", []):
                if int(record["look"]) in before:
                    done += int(record.get("trials_done", 0))
                    failed += int(record.get("trials_failed", 0))
            status = "FINISHED" if ended else "KILLED"
            looks = looks_summary(state, spec.sequential.looks)
        counts = {"trials_total": total, "trials_done": done, "trials_failed": failed}
        print_results(console, uri, spec, time.monotonic() - started, recorder.warnings)
        if status == "FINISHED":
            log_latencies(spec, parent, uri, say=lambda m: console.print(m, soft_wrap=True))
        where = exp_path.local if exp_path.local is not None else str(exp_path)
        return LaunchOutcome(spec.name, parent, total, done, failed, status, where, looks)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except Exception as exc:
        refusal = storage_refusal(exc, exp_path, opts.space, opts.storage)
        if refusal is None:
            raise
        status = "KILLED"  # resumable once the storage takes writes again
        raise refusal from None
    finally:
        # Queued writes are flushed; trials Ray left unfinished (Ctrl-C, a failed driver) end
        # KILLED, never RUNNING; --resume reopens them.
        recorder.close("KILLED")
        tracking.end_run(parent, status, uri)
        # Merged: a sequential study's boundaries and decided looks stay in its state.
        ended = {"parent_run_id": parent, "status": status, "study": spec.name, **counts}
        end_state(exp_path, {**read_state(exp_path), **ended})


def _finished_before(
    spec: StudySpec, opts: LaunchOptions, exp_path: Place, total: int, console: Console
) -> LaunchOutcome | None:
    """``--resume`` of a study whose last launch finished every trial of this grid: nothing
    to run, so no Ray, no pretraining check and no latency pass; None otherwise."""
    if not opts.resume or opts.retry_failed:
        return None
    state = read_state(exp_path)
    if state.get("status") != "FINISHED" or state.get("trials_total") != total:
        return None  # unfinished, recorded before the counts were, or another grid now
    parent = state["parent_run_id"]
    console.print(
        f"study {spec.name!r} already finished (MLflow parent run {parent}): nothing to "
        f"resume. `capstudy status {spec.name}` shows it; --retry-failed reruns failed trials.",
        soft_wrap=True,
    )
    looks = looks_summary(state, spec.sequential.looks) if spec.sequential else ""
    where = exp_path.local if exp_path.local is not None else str(exp_path)
    done, failed = int(state["trials_done"]), int(state["trials_failed"])
    return LaunchOutcome(spec.name, parent, total, done, failed, "FINISHED", where, looks)


def _dry_run(
    spec: StudySpec, opts: LaunchOptions, uri: str, checks: list, console: Console
) -> LaunchOutcome:
    """Print the plan and the checked settings; start nothing (connects to --address only)."""
    problems: list[str] = []
    fingerprints = None
    storage = opts.storage or str(paths.ray_storage())
    checks = checks + storage_checks(storage)  # a URI: probed from here (a path: by the nodes)
    if opts.address is not None and not any(c.level == ERROR for c in checks):
        # On a cluster the nodes check (and fingerprint) the data; this machine may lack it.
        _ray_init(opts.address, uri)
        res, needs, roots = spec.resources, data_needs(spec), dict(spec.data)
        found, fingerprints = cluster_checks(
            storage, uri, res.cpu, res.gpu, needs, roots, pretrain_resources_ask(spec)
        )
        checks = checks + found
    have = have_weights_fn(spec, uri, problems, fingerprints)
    the_plan = plan(spec, have_weights=have)
    print(the_plan.render())
    print(cost_lines(the_plan, opts.devices))
    console.print(_power_line(spec, the_plan), highlight=False, soft_wrap=True)
    for problem in problems:
        console.print(f"[yellow]note:[/] {problem}")
    print("settings:")
    print(render(checks))
    # The whole plan is printed first; a setting that would stop the launch then fails the
    # dry run too (exit 2), so a script that plans before it launches learns it here.
    raise_on_errors(checks, "the settings above hold errors: ")
    total = len(expand_cells(spec)) * spec.tune.samples_per_cell
    return LaunchOutcome(spec.name, None, total, 0, 0, "PLANNED", None)


def _power_line(spec: StudySpec, the_plan) -> str:
    """Will this grid answer the question? The plan's one simulated line (the library's);
    a sequential study's simulates its looks: the most and the expected cost, and power."""
    from capstudy.analysis.power import plan_line
    from capstudy.analysis.power_design import design_from_study
    from capstudy.capacity import free_backbone_params

    try:
        design = design_from_study(spec, count=free_backbone_params)
    except CapstudyError as exc:  # nothing to compare (no pretrained init, say): no power
        return f"power: n/a ({exc})"
    if spec.sequential is not None:
        return looks_plan_line(spec, the_plan, design)
    return plan_line(design, spec.name)


def _ray_init(address: str | None, uri: str) -> None:
    """Connect to a cluster (``--address``) or start Ray on this machine."""
    local = address is None
    # The tracking server's login (MLFLOW_TRACKING_USERNAME/PASSWORD) is never put here: Ray
    # writes a runtime_env's variables into its logs. A local Ray's workers inherit it from
    # this process; on a cluster it is set where each node's `ray start` runs.
    env = {name: os.environ[name] for name in _FORWARDED_ENV if local and name in os.environ}
    env["MLFLOW_TRACKING_URI"] = uri
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # One small checkpoint per epoch per trial forces a (cheap, ~30 ms) experiment snapshot;
    # Ray warns about that every few seconds, which only buries the live view.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = dict(
        runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False
    )
    try:
        ray.init(address=address or "local", **kwargs)
    except ConnectionError as exc:
        raise CapstudyError(
            f"cannot reach a Ray cluster at --address {address!r}: {exc}. Start one with "
            "`ray start --head` (see launch/cluster/) or leave --address out to run locally."
        ) from None


def build_tuner(
    spec: StudySpec,
    opts: LaunchOptions,
    exp_path: Place,
    recorder: StudyRecorder,
    trainable_fn: Any = None,
    restore: bool = False,
) -> tune.Tuner:
    """The Tuner of the experiment at ``exp_path`` (or the restored one with ``restore``).

    ``exp_path`` is ``<storage>/<study>``, or a sequential study's look folder inside it.
    ``trainable_fn`` is the trial function; tests pass a scripted one to drive the real
    searcher, scheduler and recorder through Ray without training models.
    """
    cells = expand_cells(spec)
    trainable = tune.with_resources(
        trainable_fn or capstudy_trainable, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    )
    epochs = int(spec.fixed.get("epochs", 0) or spec.tune.asha.max_t)
    live = LiveView(
        spec.name, spec.metric, spec.mode, len(cells), spec.tune.samples_per_cell, epochs
    )
    asha = spec.tune.asha
    fresh = CellASHA(asha.grace, asha.reduction, asha.max_t, spec.mode, asha.scope)
    # Attached: the scheduler and recorder Ray unpickles on a restore are these two.
    scheduler = CellASHAScheduler(
        load_asha(exp_path, fresh) if restore else fresh,
        spec.metric,
        spec.mode,
        exp_path,
        retry_changes(opts.retry_failed, opts.retry_batch_size),
    ).attach()
    recorder.attach()
    if restore:
        # --retry-failed: only ERROR trials run again, from scratch (the cause was fixed, so
        # their checkpoints may hold what went wrong); finished ones stay as they are.
        return tune.Tuner.restore(
            str(exp_path),
            trainable,
            resume_unfinished=not opts.retry_failed,
            resume_errored=not opts.retry_failed,
            restart_errored=opts.retry_failed,
        )
    searcher = CellSearcher(spec, seed=opts.seed)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=searcher.total_trials,
            max_concurrent_trials=opts.max_concurrent or spec.tune.max_concurrent,
            # Reuse trial processes (Ray 2.60's default is off): a fresh one pays ~5 s of torch,
            # timm and MLflow imports, as much as a smoke trial's whole training epoch.
            reuse_actors=True,
            trial_name_creator=lambda t: t.config.get(TRIAL_KEY, t.trial_id),
            trial_dirname_creator=lambda t: t.config.get(TRIAL_KEY, t.trial_id),
        ),
        run_config=tune.RunConfig(
            name=exp_path.name,
            storage_path=str(exp_path.parent),
            failure_config=tune.FailureConfig(max_failures=opts.max_failures),
            # Two, not one: a driver killed between Ray registering a new checkpoint (and
            # deleting the one before) and its next experiment snapshot resumes from a state
            # naming the deleted one; the scheduler then points the trial at the newest one
            # left (launch/checkpoints.py), and with two kept there usually is one.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[recorder, live],
            verbose=0,
        ),
    )
