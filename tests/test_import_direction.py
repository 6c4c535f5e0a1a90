"""The import direction of DESIGN.md, enforced two ways.

pure modules (stdlib + PyYAML) <- torch modules <- the few ray/mlflow modules <- launch, cli.
``analysis`` imports only pure capstudy modules and never torch or ray. No library module
imports ``capstudy.analysis`` at module load.

Each pure module is imported in a fresh interpreter and the heavy modules it loaded are
listed: that sees what Python really runs (package ``__init__`` side effects included), not
only what the file's import lines say. Function-local imports (a family's builder imports
timm when called) do not count, as Python does not run them at import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = {
    "capstudy",
    "capstudy.scaling",
    "capstudy.variants",
    "capstudy.families",
    "capstudy.families.registry",
    "capstudy.families.efficientnet",
    "capstudy.families.mobilenetv3",
    "capstudy.families.mobilenetv4",
    "capstudy.study",
    "capstudy.study.cells",
    "capstudy.study.checks",
    "capstudy.study.loader",
    "capstudy.study.parse",
    "capstudy.study.plan",
    "capstudy.study.source",
    "capstudy.study.spec",
    "capstudy.config",
    "capstudy.recipes",
    "capstudy.keys",
    "capstudy.paths",
    "capstudy.errors",
    "capstudy.util",
    "capstudy.data.domains",
    "capstudy.data.labels",
    "capstudy.data.counts",
}
# The only library modules (outside launch/ and cli/) allowed to name ray or mlflow.
RAY_MLFLOW = {"capstudy.tracking", "capstudy.registry", "capstudy.pretrain"}
HEAVY = ("torch", "torchvision", "timm", "numpy", "PIL", "ray", "mlflow", "pandas", "scipy")
PURE_THIRD_PARTY = {"yaml"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] in ("launch", "analysis"):
        parts = ["capstudy", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _root(name: str) -> str:
    return name.split(".")[0]


def test_there_is_something_to_check():
    names = {_module_name(p) for p in _modules("capstudy")}
    assert {"capstudy.scaling", "capstudy.backbones", "capstudy.cli.main"} <= names


@pytest.mark.parametrize("path", _modules("capstudy", "launch", "analysis"), ids=_module_name)
def test_import_direction(path: Path):
    name = _module_name(path)
    every = _imports(path, top_level_only=False)
    top = _imports(path, top_level_only=True)
    if name in PURE:
        bad = _impure_imports(name, set())
        assert not bad, f"pure module {name} imports {sorted(bad)} at module load"
    elif name.startswith("capstudy.analysis"):
        bad = {m for m in every if _root(m) in ("torch", "torchvision", "timm", "ray")}
        bad |= {
            m
            for m in every
            if m.startswith("capstudy.") and not m.startswith("capstudy.analysis") and m not in PURE
        }
        assert not bad, f"analysis module {name} imports {sorted(bad)}"
    elif not name.startswith(("capstudy.launch", "capstudy.cli")):
        named = {m for m in every if _root(m) in ("ray", "mlflow")}
        assert name in RAY_MLFLOW or not named, f"{name} imports {sorted(named)}"
    if not name.startswith(("capstudy.analysis", "capstudy.cli")):
        loads = {m for m in top if m.startswith("capstudy.analysis")}
        assert not loads, f"{name} imports analysis at module load: {sorted(loads)}"


def _path_of(module: str) -> Path | None:
    parts = module.split(".")
    if parts[:2] in (["capstudy", "launch"], ["capstudy", "analysis"]):
        parts = parts[1:]
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _impure_imports(name: str, seen: set[str]) -> set[str]:
    """Heavy or third-party imports of ``name`` and of every capstudy module it imports."""
    if name in seen:
        return set()
    seen.add(name)
    path = _path_of(name)
    if path is None:
        return set()
    bad = set()
    for m in _imports(path, top_level_only=True):
        if m.startswith("capstudy"):
            bad |= {f"{m} -> {b}" for b in _impure_imports(m, seen)}
        elif _root(m) in HEAVY or (_root(m) not in PURE_THIRD_PARTY and _third_party(m)):
            bad.add(m)
    return bad


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_module_loads_nothing_heavy_in_a_fresh_interpreter(name):
    code = (
        "import importlib, json, sys; "
        f"importlib.import_module({name!r}); "
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing {name} loads {loaded}"


def _third_party(module: str) -> bool:
    return _root(module) not in sys.stdlib_module_names and _root(module) != "capstudy"
