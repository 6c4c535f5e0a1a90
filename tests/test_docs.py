"""User-facing text speaks of the project only: no local machine paths, no issue numbers.

README.md, the docs site's pages (``docs/**/*.md``) and the files they include are scanned.
The build itself (broken links, missing pages, included files) is checked by
``mkdocs build --strict`` in ``.ci/run``; here the README's own links are checked too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Absolute paths of a machine: home and work folders, temporary homes, a user's folder.
# Generic example paths a user adapts (/shared/..., /data/...) are not a machine's.
LOCAL_PATH = re.compile(r"(?<![\w.~$-])/(?:work|root|home/\w+|Users/\w+|tmp|var/folders)/")
# "issue 18", "issues 9 and 10", "#18" (a Markdown heading is "# ", not "#1").
ISSUE_REF = re.compile(r"\bissues? \d+|(?<![&\w/])#\d+\b", re.IGNORECASE)


def user_facing_files(root: Path = ROOT) -> list[Path]:
    """README.md, every docs page, and the repository files the pages include."""
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    included = set()
    for page in pages:
        for name in re.findall(r'--8<--\s+"([^"]+)"', page.read_text(encoding="utf-8")):
            included.add(root / name.split(":")[0])
    return pages + sorted(included)


def problems(paths: list[Path], root: Path = ROOT) -> list[str]:
    """One line per forbidden text: file, line number and what was found."""
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pattern, what in ((LOCAL_PATH, "a local machine path"), (ISSUE_REF, "an issue")):
                for match in pattern.finditer(line):
                    where = path.relative_to(root)
                    found.append(f"{where}:{number}: {what}: {match.group(0)!r} in {line!r}")
    return found


def test_user_facing_text_has_no_machine_paths_or_issue_numbers():
    assert problems(user_facing_files()) == []


def test_there_is_user_facing_text_to_scan():
    names = {p.relative_to(ROOT).as_posix() for p in user_facing_files()}
    assert {"README.md", "docs/index.md", "docs/reference/study-files.md"} <= names
    assert "search_spaces/full_grid.yaml" in names  # included by the study-file reference


@pytest.mark.parametrize(
    "planted",
    [
        "Report: /work/wt-7/capstudy_out/smoke/report.html",
        "mlflow ui --backend-store-uri sqlite:////tmp/home-issue-3/mlflow.db",
        "cached in /root/.capstudy/bench/vm-cuda.json",
        "as issue 14 asked",
        "fixed in #18",
    ],
)
def test_a_planted_path_or_issue_number_fails(tmp_path, planted):
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "README.md").write_text("# capstudy\n\nClean text, /shared/ray_results.\n")
    (docs / "index.md").write_text(f"# Home\n\n{planted}\n")
    found = problems(user_facing_files(tmp_path), tmp_path)
    assert len(found) == 1 and found[0].startswith("docs/index.md:3: ")


def test_readme_is_a_landing_page_whose_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert "docs/figures/synthetic-figure1.png" in local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []
    for name in ("LICENSE", "CITATION.cff", "mkdocs.yml"):
        assert (ROOT / name).is_file()


def test_the_study_file_reference_lists_every_trial_key():
    """A key a study file can set but the reference leaves out is a key nobody finds."""
    from capstudy.config import TrialConfig

    text = (ROOT / "docs/reference/study-files.md").read_text()
    section = text.split("## Trial keys", 1)[1].split("\n## ", 1)[0]
    set_elsewhere = {"task", "train_domain", "eval_domains", "rungs", "data_roots", "hpo_keys"}
    settable = set(TrialConfig.field_names()) - set_elsewhere | {"train"}
    missing = sorted(k for k in settable if f"`{k}`" not in section)
    assert not missing, f"docs/reference/study-files.md, Trial keys: add {missing}"
