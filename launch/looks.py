"""A sequential study's looks: launch a look's seeds, decide, launch the next or stop.

Each look is a Ray Tune experiment of its own at ``<study folder>/look<k>`` (the study's
state file stays in the study folder), with the study's one parent run: the trials of every
look are one study in MLflow and in the analysis. Before the first trial, the boundaries are
computed by simulation under the study's grid (:mod:`capstudy.analysis.power_seq`) and
recorded on the parent run and in the state. After a look's trials end, the shared-threshold
test runs on every finished trial so far (:func:`capstudy.analysis.sequential.look_result`)
and the decision is recorded in both places *before* the next look starts. ``--resume``
reads the decided looks back and never decides them again: it continues the look in
progress (restoring its experiment) or starts the next one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console

from capstudy import keys, tracking
from capstudy.errors import CapstudyError
from capstudy.storage import Place
from capstudy.study import StudySpec
from capstudy.study.looks import spec_for_look
from capstudy.util import console as make_console

if TYPE_CHECKING:  # analysis is imported where it is used: a launch module loads it late
    from capstudy.analysis import sequential

# fit(look spec, look folder, resume) -> Ray's trials of that look, reconciled with MLflow.
Fit = Callable[[StudySpec, Place, bool], list[Any]]
Save = Callable[[dict], None]


def look_path(exp_path: Place, look: int) -> Place:
    """Where look ``look``'s Ray experiment lives."""
    return exp_path / f"look{look}"


def boundaries_for(
    spec: StudySpec, state: dict, parent: str, uri: str, save: Save, say
) -> sequential.Boundaries:
    """The study's boundaries: from its state, else simulated now and recorded."""
    from capstudy.analysis import sequential

    if state.get("boundaries"):
        return sequential.Boundaries.from_dict(state["boundaries"])
    from capstudy.analysis.power_design import design_from_study
    from capstudy.analysis.power_seq import null_boundaries
    from capstudy.analysis.power_sim import Effect
    from capstudy.capacity import free_backbone_params

    seq = spec.sequential
    say(
        f"sequential study: simulating {seq.simulations} no-threshold studies of this grid "
        f"for the boundaries of looks {list(seq.looks)} ({seq.spending} spending)"
    )
    design = design_from_study(spec, count=free_backbone_params)
    bounds, _ = null_boundaries(design, Effect(), seq)
    state["boundaries"] = bounds.to_dict()
    save(state)
    tracking.set_tags(parent, {keys.T_SEQ_BOUNDARIES: json.dumps(bounds.to_dict())}, uri)
    say(boundary_line(bounds))
    return bounds


def boundary_line(bounds: sequential.Boundaries) -> str:
    """One line: the looks and where each stops."""
    parts = [
        f"look {k} ({n} seeds): threshold if p <= {c:.4f}"
        for k, (n, c) in enumerate(zip(bounds.looks, bounds.p), start=1)
    ]
    futility = (
        f"; futility at an interim look if p >= {bounds.futility:g}"
        if bounds.futility is not None
        else ""
    )
    return "boundaries: " + "; ".join(parts) + futility


def run_looks(
    spec: StudySpec,
    exp_path: Place,
    parent: str,
    uri: str,
    state: dict,
    save: Save,
    fit: Fit,
    *,
    resume: bool,
    seed: int = 0,
    console: Console | None = None,
) -> tuple[list[Any], bool]:
    """Run the looks not yet decided; returns (every look's trials, whether it ended).

    ``ended`` is False when a look's trials did not all end (the launch was interrupted):
    that look is not decided, and ``--resume`` continues it.
    """
    from capstudy.analysis import sequential

    console = console or make_console()

    def say(message: str) -> None:
        console.print(f"[cyan]{message}[/]", soft_wrap=True)

    bounds = boundaries_for(spec, state, parent, uri, save, say)
    # A look recorded on the parent run but not yet in the state (a kill between the two
    # writes) is decided too: taken from the run, never decided again.
    decided = {**recorded_looks(parent, uri), **{int(d["look"]): d for d in state.get("looks", [])}}
    if len(decided) > len(state.get("looks", [])):
        state["looks"] = [decided[k] for k in sorted(decided)]
        save(state)
    trials: list[Any] = []
    for look in range(1, len(bounds.looks) + 1):
        if look in decided:
            if decided[look]["decision"] != sequential.CONTINUE:
                break
            continue
        path = look_path(exp_path, look)
        sub = spec_for_look(spec, look)
        total = len(bounds.looks)
        say(f"look {look} of {total}: seeds {bounds.looks[look - 1]} of {bounds.looks[-1]}")
        state["look"] = look
        save(state)
        from ray import tune

        restoring = resume and tune.Tuner.can_restore(str(path))
        look_trials = fit(sub, path, restoring)
        trials.extend(look_trials)
        if not all(str(t.status) in ("TERMINATED", "ERROR") for t in look_trials):
            return trials, False
        record = decide_look(spec, bounds, look, parent, uri, seed)
        from capstudy.launch.studyrun import count_trials

        record["trials_done"], record["trials_failed"] = count_trials(look_trials)
        state.setdefault("looks", []).append(record)
        save(state)
        say(look_line(record, bounds))
        if record["decision"] != sequential.CONTINUE:
            break
    return trials, True


def recorded_looks(parent: str, uri: str) -> dict[int, dict]:
    """The look decisions recorded on the parent run: look -> record."""
    tags = tracking.client(uri).get_run(parent).data.tags
    prefix = keys.T_SEQ_LOOK_PREFIX
    return {
        int(key[len(prefix) :]): json.loads(value)
        for key, value in tags.items()
        if key.startswith(prefix) and key[len(prefix) :].isdigit()
    }


def decide_look(
    spec: StudySpec, bounds: sequential.Boundaries, look: int, parent: str, uri: str, seed: int
) -> dict:
    """The shared test on every finished trial so far, its decision, recorded on the parent."""
    from capstudy.analysis import sequential
    from capstudy.analysis.results import load_from_mlflow

    try:
        table = load_from_mlflow(uri, spec.name, parent=parent).table
        result = sequential.look_result(table, n_boot=bounds.n_boot(look), seed=seed)
    except CapstudyError as exc:  # no usable trial at all: nothing to test yet
        result = {"p": float("nan"), "direction": 0, "verdict": f"not tested ({exc})"}
    decision = sequential.decide(bounds, look, result["p"])
    record = {
        "look": look,
        "seeds": bounds.looks[look - 1],
        "p": result["p"],
        "boundary_p": bounds.p[look - 1],
        "direction": result["direction"],
        "decision": decision,
    }
    tracking.set_tags(
        parent,
        {
            keys.T_SEQ_LOOK: str(look),
            keys.T_SEQ_DECISION: decision,
            f"{keys.T_SEQ_LOOK_PREFIX}{look}": json.dumps(record),
        },
        uri,
    )
    metrics = {keys.M_SEQ_BOUNDARY_P: bounds.p[look - 1]}
    if result["p"] == result["p"]:  # not nan
        metrics[keys.M_SEQ_P] = result["p"]
        metrics[keys.M_SEQ_Z] = sequential.z_of(result["p"])
    tracking.log_metrics(parent, metrics, step=look, tracking_uri=uri)
    return record


def looks_summary(state: dict, looks: tuple[int, ...]) -> str:
    """Where a sequential study stands after a launch, in a few words."""
    decided = state.get("looks", [])
    if not decided:
        return f"look 1 of {len(looks)} not decided yet"
    last = decided[-1]
    k = int(last["look"])
    where = f"look {k} of {len(looks)} ({looks[k - 1]} of {looks[-1]} seeds)"
    if last["decision"] == "continue":
        return f"{where}: continue; look {k + 1} not decided yet"
    return f"stopped at {where}: {last['decision']}"


def look_line(record: dict, bounds: sequential.Boundaries) -> str:
    """What a look decided, in one line."""
    look, p = record["look"], record["p"]
    where = f"look {look} of {len(bounds.looks)} ({record['seeds']} seeds)"
    shown = "not testable" if p != p else f"p = {p:.4f}"
    return f"{where}: {shown}, boundary {record['boundary_p']:.4f} -> {record['decision']}"


def plan_line(spec: StudySpec, the_plan, design, workers: int = 2) -> str:
    """The dry run's line for a sequential study: power, the most and the expected cost.

    ``design`` is the grid as the power analysis sees it
    (:func:`capstudy.analysis.power_design.design_from_study`). The fixed design with every
    seed is simulated as for a fixed study (its power under the default effect); the looks'
    expected seeds then follow from the textbook group-sequential model with that power
    (``capstudy power`` simulates the looks themselves, minutes instead of seconds).
    """
    from capstudy.analysis import sequential
    from capstudy.analysis.power import PLAN_REPLICATES, simulate_power, summarize_power
    from capstudy.analysis.power_seq import canonical_boundaries, hours_of
    from capstudy.analysis.power_sim import Effect
    from capstudy.cost import estimate, load_bench

    seq = spec.sequential
    gpu = spec.resources.gpu > 0
    est = estimate(the_plan, load_bench("cuda" if gpu else "cpu"))
    cost = ((est.train_s + est.eval_s) / 3600, est.pretrain_s / 3600)
    unit = "GPU-hours" if gpu else "core-hours"
    n = seq.looks[-1]
    reps = simulate_power(
        design, Effect(), (n,), PLAN_REPLICATES, scenarios=("kink",), workers=workers
    )
    fixed = float(summarize_power(reps).iloc[0]["shared_found"])
    bounds = canonical_boundaries(seq)
    drift = sequential.drift_for_power(fixed, seq.alpha)
    seeds, power = sequential.expected_seeds(bounds, drift)
    seeds_null, _ = sequential.expected_seeds(bounds, 0.0)
    return (
        f"sequential: looks at {', '.join(map(str, seq.looks))} seeds; at most "
        f"≈{hours_of(n, n, cost):,.0f} {unit} (every look); expected ≈"
        f"{hours_of(seeds, n, cost):,.0f} under the default effect (shared threshold found "
        f"in ≈{power:.0%}; {fixed:.0%} with {n} seeds fixed, {PLAN_REPLICATES} simulated "
        f"studies) and ≈{hours_of(seeds_null, n, cost):,.0f} with no effect (futility); "
        f"textbook approximation, the looks simulated: capstudy power --space {spec.name}"
    )
