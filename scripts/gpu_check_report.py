"""Write report.md and report.json for a scripts/gpu_check.sh output folder (stdlib only).

Reads what the stages left there: ``stages.jsonl`` (status and seconds per stage),
``env.json``, ``tests.xml`` (pytest JUnit), ``bench.json`` (``capstudy bench trial --json``)
and ``study.log``. A stage that failed or ran out of time still gets its row, and its log's
last lines are quoted, so a partial run still reports everything it measured.

Usage: python scripts/gpu_check_report.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

# The GPU throughput targets, checked against the bench rows.
EFFICIENCY_TARGET = 0.8  # whole trial epoch / model step, every variant at 512 px
PACKED_TARGET = 3.0  # 4 packed trials / 1 trial, B-4 and smaller
SMALL = ("B-4", "B-7", "S-6")  # "B-4 and smaller" among the benchmarked variants
STEP_TARGET = 4.0  # B-7 at 256 px: step images/s over the old step's (bench --baseline)
TAIL = 12  # log lines quoted for a stage that did not succeed


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stages(out: Path) -> list[dict]:
    path, rows = out / "stages.jsonl", []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _tests(out: Path) -> list[dict]:
    try:
        root = ET.parse(out / "tests.xml").getroot()
    except (OSError, ET.ParseError):
        return []
    cases = []
    for case in root.iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                detail = (node.get("message") or "").splitlines()[:1]
                cases.append(
                    {
                        "name": case.get("name"),
                        "outcome": outcome,
                        "detail": detail[0] if detail else "",
                    }
                )
                break
        else:
            cases.append({"name": case.get("name"), "outcome": outcome, "detail": ""})
    return cases


def _targets(rows: list[dict]) -> list[dict]:
    checks = []
    for r in rows:
        if r["image_size"] == 512:
            checks.append(
                {
                    "target": f"efficiency >= {EFFICIENCY_TARGET} ({r['label']}, 512 px)",
                    "value": round(r["efficiency"], 3),
                    "met": r["efficiency"] >= EFFICIENCY_TARGET,
                }
            )
        if r["label"] == "B-7" and r["image_size"] == 256 and r.get("step_speedup"):
            checks.append(
                {
                    "target": f"step >= {STEP_TARGET}x the old step (B-7, 256 px)",
                    "value": round(r["step_speedup"], 2),
                    "met": r["step_speedup"] >= STEP_TARGET,
                }
            )
        packed = r.get("packed") or {}
        if r["label"] in SMALL and "1" in packed and "4" in packed:
            ratio = packed["4"] / packed["1"]
            checks.append(
                {
                    "target": f"4 packed >= {PACKED_TARGET}x 1 ({r['label']}, "
                    f"{r['image_size']} px)",
                    "value": round(ratio, 2),
                    "met": ratio >= PACKED_TARGET,
                }
            )
    return checks


def _log_tail(out: Path, name: str) -> list[str]:
    try:
        return (out / name).read_text(errors="replace").splitlines()[-TAIL:]
    except OSError:
        return []


def build(out: Path) -> dict:
    """Everything the report says, as one JSON-friendly dict."""
    bench = _read_json(out / "bench.json") or {"rows": []}
    deterministic = _read_json(out / "bench_deterministic.json") or {"rows": []}
    stages = _stages(out)
    for stage in stages:
        if stage["status"] != "ok":
            stage["log_tail"] = _log_tail(out, stage["log"])
    study_tail = _log_tail(out, "study.log")
    return {
        "env": _read_json(out / "env.json") or {},
        "stages": stages,
        "total_seconds": sum(s["seconds"] for s in stages),
        "tests": _tests(out),
        "bench": bench["rows"],
        "bench_deterministic": deterministic["rows"],
        "targets": _targets(bench["rows"]),
        "study_tail": study_tail,
    }


def _markdown(report: dict) -> str:
    env = report["env"]
    lines = ["# GPU check", ""]
    memory = f" ({env['gpu_memory_gib']} GiB)" if env.get("gpu_memory_gib") else ""
    lines.append(
        f"Device: **{env.get('gpu') or 'no CUDA GPU (CPU run)'}**{memory}, "
        f"torch {env.get('torch')}, CUDA {env.get('cuda')}, {env.get('cpus')} CPUs."
    )
    lines += ["", "## Stages", "", "| stage | status | seconds | timeout |", "|---|---|---|---|"]
    for s in report["stages"]:
        lines.append(f"| {s['stage']} | {s['status']} | {s['seconds']} | {s['timeout']} |")
    lines.append(f"| total | | {report['total_seconds']} | |")
    lines += ["", "## GPU tests", ""]
    for t in report["tests"] or [{"name": "(no results)", "outcome": "", "detail": ""}]:
        detail = f" — {t['detail']}" if t["detail"] else ""
        lines.append(f"- {t['outcome']}: `{t['name']}`{detail}")
    lines += ["", "## bench trial", ""]
    rows = report["bench"]
    counts = sorted({int(n) for r in rows for n in (r.get("packed") or {})})
    head = ["variant", "px", "trial img/s", "train img/s", "step img/s", "efficiency"]
    head += ["eval img/s", "loss pass img/s"]
    head += [f"{n} packed img/s" for n in counts]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["label"],
            str(r["image_size"]),
            f"{r['trial_images_per_s']:,.1f}",
            f"{r['train_images_per_s']:,.1f}",
            f"{r['step_images_per_s']:,.1f}",
            f"{r['efficiency']:.2f}",
            f"{r.get('eval_images_per_s', 0.0):,.1f}",
            f"{r.get('forward_images_per_s', 0.0):,.1f}",
        ]
        packed = r.get("packed") or {}
        cells += [f"{packed[str(n)]:,.1f}" if str(n) in packed else "" for n in counts]
        lines.append("| " + " | ".join(cells) + " |")
    for r in report["bench_deterministic"]:
        same = [b for b in rows if (b["label"], b["image_size"]) == (r["label"], r["image_size"])]
        base = f" (default: {same[0]['trial_images_per_s']:,.1f})" if same else ""
        lines.append(
            f"\nWith `deterministic: true`, {r['label']} at {r['image_size']} px: trial "
            f"{r['trial_images_per_s']:,.1f} img/s{base}, step {r['step_images_per_s']:,.1f}."
        )
    lines += ["", "## Targets", ""]
    for t in report["targets"] or [{"target": "(no rows to check)", "value": "", "met": None}]:
        mark = {True: "met", False: "NOT met", None: ""}[t["met"]]
        lines.append(f"- {t['target']}: {t['value']} {mark}")
    for s in report["stages"]:
        if s.get("log_tail"):
            lines += ["", f"## {s['stage']}: {s['status']} (last lines of {s['log']})", "", "```"]
            lines += s["log_tail"] + ["```"]
    if report["study_tail"]:
        lines += ["", "## Tiny study (packed trials), last lines", "", "```"]
        lines += report["study_tail"] + ["```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    report = build(out)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(_markdown(report))
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
