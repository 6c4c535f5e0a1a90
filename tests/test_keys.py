"""Every ``capstudy.``-prefixed tag key is spelled once, in capstudy/keys.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY_LITERAL = re.compile(r"\bcapstudy\.[a-z_][a-z0-9_.]*")
HOME = ROOT / "capstudy" / "keys.py"


def _is_module(dotted: str) -> bool:
    """``capstudy.x.y`` names a module or package of this repository (not a tracking key)."""
    parts = dotted.rstrip(".").split(".")[1:]
    if parts and parts[0] in ("launch", "analysis"):
        base = ROOT.joinpath(*parts)
    else:
        base = ROOT.joinpath("capstudy", *parts)
    while parts:
        if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
            return True
        if parts[0] == "search_spaces" and (ROOT / "search_spaces").is_dir():
            return True
        parts, base = parts[:-1], base.parent
    return not dotted.rstrip(".").split(".")[1:]


def _key_literals(path: Path) -> list[tuple[int, str]]:
    """Key-like literals in code; docstrings (bare string statements) may name keys."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    found = []
    for node in ast.walk(tree):
        if id(node) in docs:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in KEY_LITERAL.finditer(node.value):
                if not _is_module(match.group(0)):
                    found.append((node.lineno, match.group(0)))
    return found


def _sources() -> list[Path]:
    folders = ("capstudy", "launch", "analysis", "tests", "scripts", "benchmarks")
    return sorted(
        p
        for folder in folders
        if (ROOT / folder).is_dir()
        for p in (ROOT / folder).rglob("*.py")
        if p != HOME and p != Path(__file__).resolve()
    )


def test_key_literals_live_in_keys_py():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {literal}"
        for path in _sources()
        for line, literal in _key_literals(path)
    ]
    assert not offenders, "capstudy.* keys spelled outside capstudy/keys.py:\n" + "\n".join(
        offenders
    )


def test_the_check_sees_a_key_literal(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Doc: capstudy.doc_key."""\nTAG = "capstudy.some_tag"\nM = "capstudy.study"\n'
    )
    assert _key_literals(sample) == [(2, "capstudy.some_tag")]


def test_keys_are_unique():
    tree = ast.parse(HOME.read_text())
    values = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and node.value.value.startswith("capstudy.")
    ]
    assert len(values) == len(set(values)), sorted(v for v in values if values.count(v) > 1)
