"""Study files: a search-space YAML becomes a validated :class:`StudySpec` (pure module).

The format is documented in docs/reference/study-files.md; sections are parsed in
:mod:`capstudy.study.parse`, into the types of :mod:`capstudy.study.spec`.
Everything is checked before anything runs: an unknown key, a bad value, an unknown variant
or a value the trial config rejects fails here, naming the key path, the file and the line.

Grid dims (``grid_search``) multiply into cells; sampled dims (``choice``, ``uniform``,
``loguniform``, ``randint``) are HPO drawn inside each cell (see :mod:`capstudy.study.cells`).
"""

from __future__ import annotations

import warnings
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from capstudy.errors import CapstudyError
from capstudy.study.cells import check_cells
from capstudy.study.looks import parse_sequential
from capstudy.study.parse import (
    parse_data,
    parse_evaluate,
    parse_fixed,
    parse_pretrain,
    parse_resources,
    parse_space,
    parse_study,
    parse_tune,
)
from capstudy.study.source import SourceDoc, parse_yaml
from capstudy.study.spec import StudySpec, StudyWarning

__all__ = ["available_studies", "load_study", "parse_study_text"]

TOP_LEVEL_KEYS = (
    "study",
    "fixed",
    "space",
    "evaluate",
    "tune",
    "resources",
    "data",
    "pretrain",
    "sequential",
)
REQUIRED_TOP_LEVEL = ("study",)


def parse_study_text(text: str, source: Path | str, *, file: str | None = None) -> StudySpec:
    """Parse and validate a study from YAML text.

    Args:
        text: The YAML source.
        source: Where it came from; relative ``data`` folders and ``init`` checkpoint paths
            resolve against its folder.
        file: Display name for messages (default: ``source``).

    Returns:
        The validated spec; warnings are also emitted as :class:`StudyWarning`.

    Raises:
        StudyError: Anything wrong, naming the key path, the file and the line.
    """
    source = Path(source)
    doc = parse_yaml(text, file or str(source))
    spec, notes = _build_spec(doc, source)
    check_cells(spec, doc)
    for note in notes:
        warnings.warn(note, StudyWarning, stacklevel=3)
    return spec


def _build_spec(doc: SourceDoc, source: Path) -> tuple[StudySpec, list[str]]:
    """Every section parsed and checked on its own; cross-section checks follow."""
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "a study file is a mapping with keys " + ", ".join(TOP_LEVEL_KEYS))
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise doc.error((key,), f"unknown top-level key; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    for key in REQUIRED_TOP_LEVEL:
        if key not in data:
            raise doc.error((), f"missing required section {key!r}")
    notes: list[str] = []
    base = source.parent
    name, task, metric, mode = parse_study(doc, data["study"], default_name=source.stem)
    fixed = parse_fixed(doc, data.get("fixed"), task, base, notes)
    grid, sampled = parse_space(doc, data.get("space"), task, fixed, base, notes)
    resources = parse_resources(doc, data.get("resources"))
    spec = StudySpec(
        name=name,
        task=task,
        metric=metric,
        mode=mode,
        fixed=fixed,
        grid=grid,
        sampled=sampled,
        evaluate=parse_evaluate(doc, data.get("evaluate"), task),
        tune=parse_tune(doc, data.get("tune"), task, fixed, grid, sampled, notes),
        resources=resources,
        data=parse_data(doc, data.get("data"), base),
        pretrain=parse_pretrain(doc, data.get("pretrain"), resources),
        source=source,
        warnings=tuple(notes),
        sequential=parse_sequential(doc, data.get("sequential"), grid),
    )
    return spec, notes


# --- finding study files -----------------------------------------------------------------


def _packaged() -> dict[str, Traversable]:
    """Study files shipped with the package (``capstudy.search_spaces``), by name."""
    try:
        root: Traversable | None = resources.files("capstudy.search_spaces")
    except ModuleNotFoundError:
        root = None
    if root is None or not root.is_dir():
        # An editable install cannot import a mapped folder that has no __init__.py (and
        # search_spaces/ holds YAML only), so fall back to the source checkout beside us.
        root = Path(__file__).resolve().parents[2] / "search_spaces"
        if not root.is_dir():
            return {}
    return {
        item.name.rsplit(".", 1)[0]: item for item in root.iterdir() if item.name.endswith(".yaml")
    }


def _local(cwd: Path) -> dict[str, Path]:
    """Study files in ``./search_spaces`` of the current directory, by name."""
    folder = cwd / "search_spaces"
    return {p.stem: p for p in folder.glob("*.yaml")} if folder.is_dir() else {}


def available_studies(cwd: Path | None = None) -> list[str]:
    """Names ``load_study`` resolves: ``./search_spaces/*.yaml`` and the packaged files."""
    cwd = Path.cwd() if cwd is None else cwd
    return sorted(set(_local(cwd)) | set(_packaged()))


def load_study(name_or_path: str, *, cwd: Path | None = None) -> StudySpec:
    """Load and validate a study by file path or by name.

    A value ending in ``.yaml``/``.yml``, containing a path separator, or naming an existing
    file is a path. Otherwise ``NAME`` resolves to ``./search_spaces/NAME.yaml`` (relative to
    ``cwd``) first, then to the packaged ``capstudy.search_spaces/NAME.yaml``.

    Args:
        name_or_path: A study name (``smoke``) or a path to a study file.
        cwd: Folder to resolve ``./search_spaces`` against (default: the current directory).

    Returns:
        The validated spec.

    Raises:
        CapstudyError: Unknown name (listing the available ones) or unreadable file.
        StudyError: The file is invalid (naming key path, file and line).
    """
    cwd = Path.cwd() if cwd is None else cwd
    candidate = Path(name_or_path).expanduser()
    if not candidate.is_absolute():
        candidate = cwd / candidate
    looks_like_path = name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path
    if looks_like_path or candidate.is_file():
        if not candidate.is_file():
            raise CapstudyError(f"study file {name_or_path!r} not found")
        return parse_study_text(candidate.read_text(encoding="utf-8"), candidate.resolve())
    local = _local(cwd)
    if name_or_path in local:
        path = local[name_or_path].resolve()
        return parse_study_text(path.read_text(encoding="utf-8"), path)
    packaged = _packaged()
    if name_or_path in packaged:
        item = packaged[name_or_path]
        return parse_study_text(item.read_text(encoding="utf-8"), Path(str(item)))
    names = ", ".join(available_studies(cwd)) or "(none)"
    raise CapstudyError(
        f"unknown study {name_or_path!r}; available: {names} (or pass a path to a .yaml file)"
    )
