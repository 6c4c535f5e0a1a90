"""Will this grid answer the question? Power of the study's own analysis, by simulation.

For each seed count, many tidy tables shaped like the study's grid are simulated under an
assumed effect (:mod:`capstudy.analysis.power_sim`) and each is run through the analysis
users run (:func:`_run_analysis`: selection on the noisy validation value, pairing, intervals,
hinge against constant, line and smooth power law, multiple-testing adjustment). The table
says, per seed count:

* ``found``: share of comparisons (family x train x eval domain x pretrained init) whose
  verdict is a threshold in the true direction, when the truth has a kink;
* ``missed``: share that says "no threshold" although there is one;
* ``CI width``: median ratio of the breakpoint CI's ends (capacity units) where found, and
  ``covers``: share of found breakpoint CIs that contain the true kink;
* ``false``: share of comparisons with a threshold verdict when the truth has none: the
  straight line with the same total rise (``null``: only the kink is missing), and
  ``false (smooth)`` under power laws ``gain ~ C ** beta`` with the same rise (``smooth``,
  exponents 0.2, 0.4 and 0.6 in turn): smooth growth, the alternative a reviewer raises first.

The study's primary answer is the shared threshold (:mod:`capstudy.analysis.shared`), one
test per study: ``shared found`` is the share of simulated studies whose shared verdict is a
threshold in the true direction, ``shared covers`` the share whose shared CI contains the
kink, and ``shared false`` / ``shared false (smooth)`` the share of no-kink studies with a
shared threshold.

Monte-Carlo error: comparisons of one simulated study share its random-init runs, so they
are not independent; each rate's ± is the standard error over simulated studies.
Only comparisons whose family has at least two capacities on each side of the kink count
towards ``found`` and ``missed`` (elsewhere the analysis cannot place a breakpoint).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from capstudy.analysis.power_design import Design
from capstudy.analysis.power_sim import Effect, noise_scale, simulate_table
from capstudy.analysis.threshold import VERDICT_NONE, VERDICT_THRESHOLD

DEFAULT_SEEDS = (2, 3, 5, 8)
DEFAULT_REPLICATES = 30
# A kink needs this many distinct capacities on each arm (the analysis's own rule).
_MIN_PER_ARM = 2
SCENARIOS = ("kink", "null", "smooth")
# Exponents of the smooth scenario's power laws, used in turn across replicates.
SMOOTH_EXPONENTS = (0.2, 0.4, 0.6)


def _run_analysis(table: pd.DataFrame, seed: int):
    """The one adapter to the analysis: a tidy table in, its verdicts out.

    Calls the pure verdict function ``capstudy analyze`` itself runs, in its fast mode
    (fewer bootstrap replicates and a coarser breakpoint grid, so hundreds of tables fit in
    the time budget); selection, pairing, intervals, model comparison and the adjustment
    across threshold tests are the same code.
    """
    from capstudy.analysis import tables, verdicts

    table = tables.normalize(table, source="simulated study")
    return verdicts.analyze_table(table, find_threshold=True, seed=seed, fast=True)


@dataclass(frozen=True)
class _Task:
    design: Design
    effect: Effect
    scale: float
    scenario: str
    n_seeds: int
    replicate: int
    base_seed: int


def findable_families(design: Design, kink: float) -> dict[str, bool]:
    """Family -> whether its capacities put at least two on each side of the kink."""
    out = {}
    for family in design.families:
        caps = {v.backbone_params for v in design.variants if v.family == family}
        below = sum(c <= kink for c in caps)
        out[family] = below >= _MIN_PER_ARM and len(caps) - below >= _MIN_PER_ARM
    return out


def _one_replicate(task: _Task) -> dict:
    """Simulate one study, analyse it, count its verdicts."""
    scenario_index = SCENARIOS.index(task.scenario)
    rng = np.random.default_rng([task.base_seed, scenario_index, task.n_seeds, task.replicate])
    table = simulate_table(
        task.design,
        task.effect,
        task.n_seeds,
        rng,
        shape=task.scenario,
        exponent=SMOOTH_EXPONENTS[task.replicate % len(SMOOTH_EXPONENTS)],
        scale=task.scale,
    )
    result = _run_analysis(table, seed=int(rng.integers(2**31)))
    fits = result.fits
    findable = fits["family"].map(findable_families(task.design, task.effect.kink)).fillna(False)
    verdict = fits["verdict"].astype(str)
    direction = pd.to_numeric(fits["direction"], errors="coerce")
    found = (verdict == VERDICT_THRESHOLD) & (direction == np.sign(task.effect.slope))
    lo, hi = fits["threshold_lo"].astype(float), fits["threshold_hi"].astype(float)
    kink_found = found & findable
    return {
        "scenario": task.scenario,
        "n_seeds": task.n_seeds,
        "replicate": task.replicate,
        "comparisons": len(fits),
        "findable": int(findable.sum()),
        "found": int(kink_found.sum()),
        "missed": int(((verdict == VERDICT_NONE) & findable).sum()),
        "threshold_any": int((verdict == VERDICT_THRESHOLD).sum()),
        "covers": int((kink_found & (lo <= task.effect.kink) & (hi >= task.effect.kink)).sum()),
        "ci_ratios": (hi / lo)[kink_found].tolist(),
        "ci_lo": lo[kink_found].tolist(),
        "ci_hi": hi[kink_found].tolist(),
        **_shared_counts(result.pooled, task),
    }


def _shared_counts(pooled: pd.DataFrame | None, task: _Task) -> dict:
    """The shared threshold's verdict on one simulated study, as 0/1 counts."""
    row = pooled.iloc[0] if pooled is not None and not pooled.empty else {}
    found = row.get("verdict") == VERDICT_THRESHOLD
    right = found and row.get("direction") == np.sign(task.effect.slope)
    findable = any(findable_families(task.design, task.effect.kink).values())
    # Among the found (right direction, findable) ones, as the table's legend says.
    covers = right and findable and row["threshold_lo"] <= task.effect.kink <= row["threshold_hi"]
    return {
        "shared_any": int(found),
        "shared_found": int(right and findable),
        "shared_covers": int(bool(covers)),
    }


def simulate_power(
    design: Design,
    effect: Effect,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    replicates: int = DEFAULT_REPLICATES,
    *,
    scenarios: tuple[str, ...] = SCENARIOS,
    workers: int | None = None,
    base_seed: int = 0,
) -> pd.DataFrame:
    """Simulate and analyse ``replicates`` studies per seed count and scenario.

    Args:
        design: The study's grid.
        effect: The assumed truth.
        seeds: Seed counts to try (each at least 2: a gain CI needs two seeds).
        replicates: Simulated studies per seed count and scenario.
        scenarios: ``kink`` (the effect), ``null`` (a line, same rise) and/or ``smooth``
            (power laws, same rise).
        workers: Processes (default: the usable CPUs, at most 2 on a shared machine is
            what ``capstudy power`` passes); 1 runs in this process.
        base_seed: Seed of every random draw (results are reproducible).

    Returns:
        One row per simulated study (see :func:`_one_replicate`).
    """
    bad = [s for s in seeds if s < 2]
    if bad:
        raise ValueError(f"seed counts {bad}: the analysis needs at least 2 seeds per cell")
    scale = noise_scale(effect, design.samples_per_cell, design.mode)
    tasks = [
        _Task(design, effect, scale, scenario, n, r, base_seed)
        for scenario in scenarios
        for n in seeds
        for r in range(replicates)
    ]
    return pd.DataFrame(run_tasks(_one_replicate, tasks, workers))


def run_tasks(fn, tasks: list, workers: int | None) -> list:
    """``[fn(t) for t in tasks]`` in ``workers`` processes (default: the usable CPUs)."""
    workers = workers or len(os.sched_getaffinity(0))
    if workers <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    # fork: workers inherit the imported analysis instead of importing it again.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(fn, tasks, chunksize=max(1, len(tasks) // 16)))


def _rate(num: pd.Series, den: pd.Series) -> tuple[float, float]:
    """Pooled rate and its standard error over simulated studies (ratio estimator)."""
    total = float(den.sum())
    if total == 0:
        return float("nan"), float("nan")
    rate = float(num.sum()) / total
    n = len(num)
    if n < 2:
        return rate, float("nan")
    resid = (num - rate * den) / den.mean()
    return rate, float(np.sqrt((resid**2).sum() / (n * (n - 1))))


def _share(hits: pd.Series) -> tuple[float, float]:
    """Share of simulated studies and its binomial standard error."""
    n = len(hits)
    rate = float(hits.mean())
    return rate, float(np.sqrt(rate * (1 - rate) / n)) if n > 1 else float("nan")


def summarize_power(reps: pd.DataFrame) -> pd.DataFrame:
    """One row per seed count: rates with standard errors, CI width, false-threshold rate."""
    rows = []
    for n_seeds in sorted(reps["n_seeds"].unique()):
        row: dict = {"n_seeds": int(n_seeds)}
        kink = reps[(reps["n_seeds"] == n_seeds) & (reps["scenario"] == "kink")]
        null = reps[(reps["n_seeds"] == n_seeds) & (reps["scenario"] == "null")]
        smooth = reps[(reps["n_seeds"] == n_seeds) & (reps["scenario"] == "smooth")]
        if not kink.empty:
            row["found"], row["found_se"] = _rate(kink["found"], kink["findable"])
            row["missed"], row["missed_se"] = _rate(kink["missed"], kink["findable"])
            row["covers"], _ = _rate(kink["covers"], kink["found"])
            ratios = [r for lst in kink["ci_ratios"] for r in lst]
            los = [r for lst in kink["ci_lo"] for r in lst]
            his = [r for lst in kink["ci_hi"] for r in lst]
            row["ci_ratio"] = float(np.median(ratios)) if ratios else float("nan")
            row["ci_lo"] = float(np.median(los)) if los else float("nan")
            row["ci_hi"] = float(np.median(his)) if his else float("nan")
            row["replicates"] = len(kink)
            row["shared_found"], row["shared_found_se"] = _share(kink["shared_found"])
            found = kink["shared_found"].sum()
            row["shared_covers"] = kink["shared_covers"].sum() / found if found else np.nan
        for name, part in (("false", null), ("false_smooth", smooth)):
            if part.empty:
                continue
            row[name], row[f"{name}_se"] = _rate(part["threshold_any"], part["comparisons"])
            row[f"shared_{name}"], row[f"shared_{name}_se"] = _share(part["shared_any"])
            row.setdefault("replicates", len(part))
        rows.append(row)
    return pd.DataFrame(rows)


def capacity_text(value: float) -> str:
    """Backbone parameters as ``17k`` / ``1.5M``."""
    if not np.isfinite(value):
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2g}M"
    return f"{value / 1e3:.3g}k"


def pct(rate: float, se: float | None = None) -> str:
    if not np.isfinite(rate):
        return "-"
    text = f"{100 * rate:.0f}%"
    return text + (f" ±{100 * se:.0f}" if se is not None and np.isfinite(se) else "")


def effect_lines(effect: Effect) -> list[str]:
    """The assumed effect, one line per number, each with where it came from."""
    rows = [
        ("seed SD of the metric", f"{effect.seed_sd:.3g}", "seed_sd"),
        ("gain slope per tenfold capacity", f"{effect.slope:+.3g}", "slope"),
        ("kink (backbone parameters)", capacity_text(effect.kink), "kink"),
        ("plateau (gain below the kink)", f"{effect.plateau:+.3g}", "plateau"),
        ("HPO spread / seed noise", f"{effect.hpo_spread:.3g}", "hpo_spread"),
        ("val-subset noise / seed noise", f"{effect.val_noise:.3g}", "val_noise"),
        ("noise correlation across domains", f"{effect.domain_corr:.3g}", "domain_corr"),
    ]
    return [f"  {name:<34} {value:<8} ({effect.source(key)})" for name, value, key in rows]


def design_lines(design: Design, effect: Effect) -> list[str]:
    """What is simulated: the grid, its capacities per family, where the kink can be found."""
    samples = f"{design.samples_per_cell} HPO sample{'s' if design.samples_per_cell != 1 else ''}"
    lines = [
        f"  {len(design.variants)} variants, inits {', '.join(design.inits)}; train "
        f"{', '.join(design.train_domains)}; evaluate {len(design.eval_domains)} domains; "
        f"{samples} per cell (selected on noisy val/{design.metric})",
        f"  {design.n_comparisons} threshold tests per study; the study itself has "
        f"{design.n_seeds} seeds",
    ]
    findable = findable_families(design, effect.kink)
    for family in design.families:
        caps = sorted({v.backbone_params for v in design.variants if v.family == family})
        where = "" if findable[family] else "  <- kink not between 2+ capacities on each side"
        span = f"{capacity_text(caps[0])}-{capacity_text(caps[-1])}"
        lines.append(f"  {family}: {len(caps)} capacities {span}{where}")
    return lines


def render_table(summary: pd.DataFrame, design: Design) -> list[str]:
    """The power table, one line per seed count: the shared test, then per comparison."""
    head = (
        f"  {'':>13}  {'shared threshold (one test per study)':<44}  "
        f"{'per comparison (descriptive)':<40}\n"
        f"  {'seeds':>5} {'trials':>7}  {'found':>8} {'covers':>6} {'false':>8} "
        f"{'false(sm)':>9}   {'found':>8} {'false':>8} {'false(sm)':>9}  "
        f"{'breakpoint CI (median)':<26}"
    )
    lines = head.split("\n")
    for _, r in summary.iterrows():
        ci = "-"
        if np.isfinite(r.get("ci_ratio", np.nan)):
            ci = f"x{r['ci_ratio']:.2g} ({capacity_text(r['ci_lo'])}-{capacity_text(r['ci_hi'])})"

        def cell(name: str, width: int, se: bool = True, r=r) -> str:
            value = r.get(name, np.nan)
            return f"{pct(value, r.get(f'{name}_se') if se else None):>{width}}"

        lines.append(
            f"  {int(r['n_seeds']):>5} {design.trials(int(r['n_seeds'])):>7}  "
            f"{cell('shared_found', 8)} {cell('shared_covers', 6, False)} "
            f"{cell('shared_false', 8)} {cell('shared_false_smooth', 9)}   "
            f"{cell('found', 8)} {cell('false', 8)} {cell('false_smooth', 9)}  {ci:<26}"
        )
    return lines


# Replicates of the one-line estimate under `launch --dry-run`: about 10 s on a loaded
# 2-core machine for full_grid; its ± says how rough it is.
PLAN_REPLICATES = 8


def plan_line(design: Design, study: str, workers: int = 2) -> str:
    """One line for ``launch --dry-run``: power at the study's seed count, default effect.

    Args:
        design: the study's grid (:func:`capstudy.analysis.power_design.design_from_study`).
        study: the study's name, for the command that prints the full table.
        workers: processes for the simulation.
    """
    n = max(design.n_seeds, 2)
    effect = Effect()
    kink = capacity_text(effect.kink)
    if not any(findable_families(design, effect.kink).values()):
        return (
            f"power: n/a under the default effect: no family has 2+ capacities on each side "
            f"of its kink at {kink} params; set your own: capstudy power --space {study} "
            "--kink N"
        )
    reps = simulate_power(
        design, effect, (n,), PLAN_REPLICATES, scenarios=("kink",), workers=workers
    )
    row = summarize_power(reps).iloc[0]
    return (
        f"power (simulated, {PLAN_REPLICATES} studies): the shared threshold is found in "
        f"{pct(row['shared_found'], row['shared_found_se'])} of studies (per comparison: "
        f"{pct(row['found'], row['found_se'])}) at {n} seeds if the gain rises "
        f"{effect.slope:g}/decade above {kink} params with seed SD {effect.seed_sd:g}; false "
        f"thresholds and more seeds: capstudy power --space {study}"
    )
