"""Mutation score of the modules that carry the study's promises (mutmut 3; slow, not in CI).

Each module is mutated by mutmut (small deliberate bugs: ``<`` for ``<=``, ``1 -`` dropped, a
constant changed, an argument removed, ...) and the mutant is run against that module's fast
test files; a mutant that no test fails "survived". The score is the share of mutants some
test detects (killed, or made to run past its time limit).

    python benchmarks/mutation.py                          # all modules (hours on 2 cores)
    python benchmarks/mutation.py --modules asha,plan      # a few
    python benchmarks/mutation.py --modules threshold,hinge --sample 100 --seed 0
    python benchmarks/mutation.py --report-only --workdir DIR   # re-read a finished run

Why a staging copy: ``analysis/`` and ``launch/`` install as ``capstudy.analysis`` and
``capstudy.launch`` through an editable install's import hook, and mutmut copies sources
into ``mutants/`` and puts that folder first on ``sys.path``. So each module gets its own
folder laid out as a plain package (``capstudy/`` with ``analysis/``, ``launch/`` and
``search_spaces/`` inside it, plus ``tests/``), where the checkout is never touched and
``import capstudy.analysis.gains`` finds the mutated copy: the normal path finder sits
before setuptools' editable finder on ``sys.meta_path`` (``_EditableFinder`` is appended
last), so a ``capstudy`` package on ``sys.path`` wins. The run checks that it did.

mutmut runs each mutant in a forked process, only with the tests that call the mutated
function (recorded in a first, clean run), stopping at the first failure (``-x``), with a
time limit of ``(tests' clean time + 1 s) x timeout-multiplier x 2`` seconds. The whole run
sits at ``nice -n 19``. ``--sample N`` runs a fixed-seed draw of N mutants per module (the
score is then an estimate; the table says "N of M"). Printed: one row per module; written to
``--out``: ``mutation.json`` (the table and every surviving mutant with its diff) and
``survivors.csv``. Figures and the survivors' reasons: ``docs/benchmarks/mutation.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANALYSIS_TESTS = "tests/analysis/test_{}.py"
LAUNCH_TESTS = "tests/launch/test_{}.py"


def _tests(pattern: str, *names: str) -> tuple[str, ...]:
    return tuple(pattern.format(n) for n in names)


# module name -> (source path in the checkout, test files). test_power.py is left out: its
# simulations take ~50 s per run of the file and mostly repeat what test_validation.py holds.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "intervals": (
        "analysis/intervals.py",
        _tests(ANALYSIS_TESTS, "intervals", "validation", "multiplicity", "gains_pairing"),
    ),
    "gains": (
        "analysis/gains.py",
        _tests(ANALYSIS_TESTS, "gains_pairing", "validation", "multiplicity", "intervals"),
    ),
    "threshold": (
        "analysis/threshold.py",
        _tests(
            ANALYSIS_TESTS, "threshold_fit", "validation", "multiplicity", "breakpoint_crosscheck"
        ),
    ),
    "hinge": (
        "analysis/hinge.py",
        _tests(
            ANALYSIS_TESTS, "threshold_fit", "breakpoint_crosscheck", "validation", "multiplicity"
        ),
    ),
    "selection": (
        "analysis/selection.py",
        _tests(ANALYSIS_TESTS, "selection_rules", "gains_pairing", "multiplicity"),
    ),
    "asha": ("launch/asha.py", _tests(LAUNCH_TESTS, "asha", "asha_vs_ray", "rungs")),
    "plan": (
        "capstudy/study/plan.py",
        (
            "tests/study/test_plan.py",
            "tests/study/test_plan_render.py",
            *_tests(LAUNCH_TESTS, "rungs", "asha", "asha_vs_ray"),
        ),
    ),
}
# checkout folder -> where it sits in the staged package
LAYOUT = {
    "capstudy": "capstudy",
    "analysis": "capstudy/analysis",
    "launch": "capstudy/launch",
    "search_spaces": "capstudy/search_spaces",
    "tests": "tests",
}
DETECTED = ("killed", "timeout", "segfault")
UNDETECTED = ("survived", "no tests", "suspicious")


@dataclass
class ModuleResult:
    """One module's counts (by mutmut status) and its undetected mutants."""

    module: str
    source: str
    counts: dict[str, int] = field(default_factory=dict)
    survivors: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def detected(self) -> int:
        return sum(self.counts.get(s, 0) for s in DETECTED)

    @property
    def score(self) -> float:
        checked = self.detected + sum(self.counts.get(s, 0) for s in UNDETECTED)
        return self.detected / checked if checked else float("nan")


def staged_path(source: str) -> str:
    """Where a checkout file sits in the staged package (``analysis/x.py`` -> ``capstudy/...``)."""
    top, _, rest = source.partition("/")
    return f"{LAYOUT[top]}/{rest}"


def stage(dest: Path, module: str, args: argparse.Namespace) -> None:
    """Lay the checkout out in ``dest`` as an importable package, with mutmut's settings."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")
    for folder, target in LAYOUT.items():
        shutil.copytree(REPO / folder, dest / target, ignore=ignore, dirs_exist_ok=True)
    source, tests = MODULES[module]
    setting = {
        "source_paths": ["capstudy"],
        "only_mutate": [staged_path(source)],
        "pytest_add_cli_args_test_selection": list(tests),
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
        "timeout_multiplier": args.timeout_multiplier,
        "timeout_constant": 1.0,
        "use_git_change_detection": False,
        "process_isolation": "fork",
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in setting.items()]
    text = (REPO / "pyproject.toml").read_text() + "\n".join(lines) + "\n"
    (dest / "pyproject.toml").write_text(text)


def check_import_resolves_to_stage(dest: Path, source: str) -> None:
    """Fail early if the staged copy would lose to the editable install's finder."""
    module = staged_path(source).removesuffix(".py").replace("/", ".")
    # import_module: `capstudy.study.plan` is also the name of a function in capstudy.study.
    code = f"import importlib; print(importlib.import_module({module!r}).__file__)"
    env = {**os.environ, "PYTHONPATH": str(dest)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tempfile.gettempdir(),
        env=env,
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(dest.resolve()):
        raise SystemExit(f"{module} imports from {out}, not from the staged copy in {dest}")


def list_mutants(dest: Path, source: str) -> list[str]:
    """Every mutant of ``source`` by name, generated the way ``mutmut run`` begins (no tests)."""
    code = (
        "import os; from mutmut.__main__ import copy_also_copy_files, copy_src_dir, "
        "create_mutants; os.makedirs('mutants', exist_ok=True); copy_src_dir(); "
        "copy_also_copy_files(); create_mutants(1)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=dest, check=True, capture_output=True)
    meta = dest / "mutants" / f"{staged_path(source)}.meta"
    return sorted(json.loads(meta.read_text())["exit_code_by_key"])


def run_mutmut(dest: Path, args: argparse.Namespace, names: list[str] | None = None) -> int:
    """``nice -n 19 mutmut run [names]`` in the staged folder; output goes to ``mutmut.log``."""
    mutmut = Path(sys.executable).with_name("mutmut")
    # Tests that start a subprocess import capstudy from the mutated copy too. The folder
    # must exist before mutmut starts: Python caches "no such folder" for a sys.path entry.
    (dest / "mutants").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(dest / "mutants"), "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = ["nice", "-n", "19", str(mutmut), "run", "--max-children", str(args.max_children)]
    cmd += names or []
    with open(dest / "mutmut.log", "w") as log:
        return subprocess.run(
            cmd, cwd=dest, env=env, stdout=log, stderr=subprocess.STDOUT
        ).returncode


def mutant_diff(dest: Path, source: str, name: str) -> str:
    """The mutant as a unified diff: mutmut's own function in-process (``mutmut show`` costs
    a second per call), else ``mutmut show``."""
    try:
        from mutmut.configuration import reset_config
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        cwd = Path.cwd()
        os.chdir(dest)
        try:
            reset_config()
            return get_diff_for_mutant(name, path=Path(staged_path(source)))
        finally:
            os.chdir(cwd)
    except Exception:  # noqa: BLE001 -- internals of mutmut: fall back to its command
        mutmut = Path(sys.executable).with_name("mutmut")
        shown = subprocess.run(
            [str(mutmut), "show", name], cwd=dest, text=True, capture_output=True
        )
        return "\n".join(x for x in shown.stdout.splitlines() if not x.startswith("# "))


def collect(dest: Path, module: str) -> ModuleResult:
    """Read mutmut's result files for the module into counts and a survivor list."""
    from mutmut.stats import status_by_exit_code

    source = MODULES[module][0]
    meta = dest / "mutants" / f"{staged_path(source)}.meta"
    exit_codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    result = ModuleResult(module=module, source=source)
    for name, code in sorted(exit_codes.items()):
        status = status_by_exit_code[code]
        result.counts[status] = result.counts.get(status, 0) + 1
        if status in UNDETECTED:
            result.survivors.append(
                {
                    "module": module,
                    "mutant": name,
                    "status": status,
                    "diff": mutant_diff(dest, source, name),
                }
            )
    return result


def table(results: list[ModuleResult]) -> str:
    """The per-module table, as Markdown."""
    head = "| module | mutants | killed | survived | no tests | timeout | other | score | min |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    named = ("killed", "survived", "no tests", "timeout")
    totals: dict[str, int] = {}
    for r in results:
        unchecked = r.counts.get("not checked", 0)  # left out by --sample
        run = r.total - unchecked
        other = run - sum(r.counts.get(s, 0) for s in named)
        cells = [run, *(r.counts.get(s, 0) for s in named), other]
        shown = [f"{run} of {r.total}" if unchecked else str(run), *map(str, cells[1:])]
        minutes = f"{r.seconds / 60:.0f}" if r.seconds == r.seconds else "-"  # NaN: not timed
        lines.append(f"| `{r.source}` | " + " | ".join(shown) + f" | {r.score:.1%} | {minutes} |")
        for key, value in zip(("mutants", *named, "other"), cells):
            totals[key] = totals.get(key, 0) + value
    checked = sum(r.detected + sum(r.counts.get(s, 0) for s in UNDETECTED) for r in results)
    detected = sum(r.detected for r in results)
    score = f"{detected / checked:.1%}" if checked else "-"
    minutes = sum(r.seconds for r in results if r.seconds == r.seconds) / 60
    cells = " | ".join(str(v) for v in totals.values())
    lines.append(f"| **all** | {cells} | {score} | {minutes:.0f} |")
    return "\n".join(lines)


def write_outputs(results: list[ModuleResult], out: Path) -> None:
    """``mutation.json`` (table and survivors with diffs) and ``survivors.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "tool": f"mutmut {_mutmut_version()}",
        "modules": [
            {**asdict(r), "total": r.total, "detected": r.detected, "score": r.score}
            for r in results
        ],
    }
    (out / "mutation.json").write_text(json.dumps(payload, indent=2) + "\n")
    with open(out / "survivors.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["module", "mutant", "status", "diff"])
        writer.writeheader()
        for r in results:
            writer.writerows(r.survivors)


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default=",".join(MODULES), help="comma-separated names")
    parser.add_argument("--workdir", type=Path, help="staging folders (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=REPO / "mutation_out")
    parser.add_argument("--max-children", type=int, default=2, help="mutants run at once")
    parser.add_argument("--timeout-multiplier", type=float, default=5.0)
    parser.add_argument("--sample", type=int, default=0, help="mutants per module (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="of the --sample draw")
    parser.add_argument("--report-only", action="store_true", help="read a finished --workdir")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules.split(",")) - set(MODULES))
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {', '.join(MODULES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="capstudy-mutation-"))
    print(f"staging in {workdir}", flush=True)
    results = []
    for module in args.modules.split(","):
        dest = workdir / module
        start = time.monotonic()
        if not args.report_only:
            if dest.exists():
                shutil.rmtree(dest)
            stage(dest, module, args)
            check_import_resolves_to_stage(dest, MODULES[module][0])
            names = None
            if args.sample:
                every = list_mutants(dest, MODULES[module][0])
                names = sorted(random.Random(args.seed).sample(every, min(args.sample, len(every))))
            code = run_mutmut(dest, args, names)
            (dest / "elapsed_s").write_text(f"{time.monotonic() - start:.0f}\n")
            print(f"{module}: mutmut exited {code} ({dest / 'mutmut.log'})", flush=True)
        result = collect(dest, module)
        elapsed = dest / "elapsed_s"
        result.seconds = float(elapsed.read_text()) if elapsed.exists() else float("nan")
        print(f"{module}: {result.counts} in {result.seconds:.0f} s", flush=True)
        results.append(result)
    print(table(results))
    write_outputs(results, args.out)
    print(f"survivors: {args.out / 'survivors.csv'}; table and diffs: {args.out / 'mutation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
