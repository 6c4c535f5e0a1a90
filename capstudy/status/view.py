"""Where studies stand, read back from the tracking store and Ray's experiment folders.

``capstudy ls``, ``capstudy status`` and the results table at the end of ``capstudy launch``
all read through here, so they agree. Only reads: nothing here writes to MLflow or Ray's
storage, so it is safe from another terminal while a study runs. Ray's storage is a local
path or a URI (:mod:`capstudy.storage`); a study's launch tags the one it ran in
(``keys.T_STORAGE``), which is read when no storage is given. A store that cannot be read
from here (no credentials) only loses the driver-liveness detail, never the report.

A trial run's state comes from MLflow: FINISHED (``capstudy.early_stopped`` tells an ASHA
stop), RUNNING, FAILED (the recorder tags the last line of its error), KILLED.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from capstudy import keys, paths
from capstudy.errors import CapstudyError
from capstudy.status.causes import last_error_line
from capstudy.status.looks import sequential_facts
from capstudy.storage import Place, place

STATE_FILE = "capstudy_study.json"  # written by the launch driver next to Ray's state
_PAGE = 5000


@dataclass
class TrialRow:
    """One trial run as status needs it."""

    run_id: str
    trial_id: str
    cell: str
    label: str
    family: str
    phi: str
    init: str
    train_domain: str
    seed: str
    status: str  # FINISHED | RUNNING | FAILED | KILLED
    stopped_early: bool
    start_ms: int
    end_ms: int | None
    metrics: dict[str, float]
    error: str = ""
    retries: dict = field(default_factory=dict)  # cause line -> times Ray retried the trial

    @property
    def state(self) -> str:
        """done | stopped | running | failed | killed."""
        if self.status == "FINISHED":
            return "stopped" if self.stopped_early else "done"
        return {"RUNNING": "running", "FAILED": "failed"}.get(self.status, "killed")

    @property
    def seconds(self) -> float:
        """Wall time of the run so far."""
        end = self.end_ms or int(time.time() * 1000)
        return max(0.0, (end - self.start_ms) / 1000)


@dataclass
class StudyState:
    """One study: its launches, its latest launch's trials, and what to do next."""

    study: str
    experiment_id: str
    launches: list[dict] = field(default_factory=list)  # newest first
    trials: list[TrialRow] = field(default_factory=list)  # of the newest launch
    metric: str = ""
    eval_domains: list[str] = field(default_factory=list)
    study_file: str = ""
    state: str = "UNKNOWN"
    ray_folder: str = ""
    sequential: dict = field(default_factory=dict)  # capstudy.status.looks.sequential_facts

    def counts(self) -> dict[str, int]:
        """Trials by state in the latest launch."""
        c = Counter(t.state for t in self.trials)
        return {s: c.get(s, 0) for s in ("done", "stopped", "running", "failed", "killed")}

    def last_activity_ms(self) -> int:
        """Latest start or end time of the latest launch and its trials."""
        stamps = [t.end_ms or t.start_ms for t in self.trials]
        stamps += [x.get("end_ms") or x.get("start_ms") or 0 for x in self.launches[:1]]
        return max(stamps, default=0)


def _client(uri: str):
    from capstudy import tracking  # the one module that names MLflow's client

    return tracking.client(uri)


def _search(client, exp_id: str, filter_string: str) -> list:
    out, token = [], None
    while True:
        page = client.search_runs(
            [exp_id], filter_string=filter_string, max_results=_PAGE, page_token=token
        )
        out.extend(page)
        token = page.token
        if not token:
            return out


def _error_line(run, ray_folder: Place | None) -> str:
    """Last error line: the recorder's tag, else Ray's ``error.txt`` of the trial."""
    tagged = run.data.tags.get(keys.T_ERROR, "")
    if tagged:
        return tagged
    trial_id = run.data.tags.get(keys.T_TRIAL_ID, "")
    if ray_folder is None or not trial_id:
        return ""
    return last_error_line(ray_folder / trial_id / "error.txt")


def _trial_row(run, ray_folder: Place | None) -> TrialRow:
    p, t = run.data.params, run.data.tags
    status = run.info.status
    return TrialRow(
        run_id=run.info.run_id,
        trial_id=t.get(keys.T_TRIAL_ID, ""),
        cell=t.get(keys.T_CELL, ""),
        label=p.get(keys.P_LABEL, "?"),
        family=p.get(keys.P_FAMILY, ""),
        phi=p.get(keys.P_PHI, ""),
        init=p.get(keys.P_INIT, "?"),
        train_domain=p.get(keys.P_TRAIN_DOMAIN, ""),
        seed=p.get(keys.P_SEED, ""),
        status=status,
        stopped_early=t.get(keys.T_EARLY_STOPPED, "") == "true",
        start_ms=int(run.info.start_time or 0),
        end_ms=int(run.info.end_time) if run.info.end_time else None,
        metrics=dict(run.data.metrics),
        error=_error_line(run, ray_folder) if status == "FAILED" else "",
        retries=json.loads(t.get(keys.T_RETRIES) or "{}"),
    )


def read_state_file(folder: Path | Place) -> dict:
    """The launch driver's state file of a Ray experiment folder ({} when absent/unreadable)."""
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _storage_root(storage: Path | str | None, latest=None) -> Place | None:
    """Ray storage as given, else as the latest launch tagged it, else the local default
    (None: a URI that cannot be opened here)."""
    tagged = latest.data.tags.get(keys.T_STORAGE) if latest is not None else None
    try:
        return place(storage or tagged or paths.ray_storage())
    except CapstudyError:
        return None


def _is_dir(folder: Place | None) -> bool:  # False where the store refuses this machine
    try:
        return folder is not None and folder.is_dir()
    except OSError:
        return False


def driver_alive(state: dict) -> bool | None:
    """Whether the driver that wrote ``state`` still runs (None: unknown, another host)."""
    pid, host = state.get("pid"), state.get("host")
    if not pid or host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def study_state(uri: str, study: str, storage: Path | str | None = None) -> StudyState | None:
    """Read one study's launches and its latest launch's trials (None: no such study).

    Args:
        uri: The tracking URI.
        study: The study name.
        storage: Ray storage (path or URI); None: where the latest launch ran (its tag).
    """
    client = _client(uri)
    exp = client.get_experiment_by_name(study)
    if exp is None:
        return None
    out = StudyState(study=study, experiment_id=exp.experiment_id)
    parents = _search(client, exp.experiment_id, f"tags.`{keys.T_KIND}` = '{keys.KIND_STUDY}'")
    parents.sort(key=lambda r: r.info.start_time or 0, reverse=True)
    root = _storage_root(storage, parents[0] if parents else None)
    folder = root / study if root is not None else None
    state = read_state_file(folder) if folder is not None else {}
    out.ray_folder = str(folder) if _is_dir(folder) else ""
    for run in parents:
        out.launches.append(
            {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "start_ms": int(run.info.start_time or 0),
                "end_ms": int(run.info.end_time) if run.info.end_time else None,
            }
        )
    if not parents:
        return out
    latest = parents[0]
    out.metric = latest.data.params.get(keys.P_STUDY_METRIC, "")
    out.eval_domains = [d for d in latest.data.params.get(keys.P_EVAL_DOMAINS, "").split(",") if d]
    out.study_file = latest.data.params.get("study_file", "")
    ray_folder = folder if state.get("parent_run_id") == latest.info.run_id else None
    children = _search(
        client,
        exp.experiment_id,
        f"tags.`{keys.T_KIND}` = '{keys.KIND_TRIAL}' and "
        f"tags.`{keys.T_PARENT_RUN}` = '{latest.info.run_id}'",
    )
    out.trials = [_trial_row(run, ray_folder) for run in children]
    out.state = _launch_state(latest.info.status, state if ray_folder else {})
    out.sequential = sequential_facts(latest.data.tags, state if ray_folder else {})
    return out


def _launch_state(status: str, state: dict) -> str:
    """RUNNING only while the driver lives; a dead driver's RUNNING run reads INTERRUPTED."""
    if status != "RUNNING":
        return status
    return "INTERRUPTED" if driver_alive(state) is False else "RUNNING"


def list_studies(uri: str, storage: Path | str | None = None) -> list[dict]:
    """Every study in the tracking store and in Ray's storage, newest activity first.

    Studies only in storage are listed from ``storage`` (default: the local one).
    """
    client = _client(uri)
    rows: dict[str, dict] = {}
    for exp in client.search_experiments():  # active experiments only (MLflow's default)
        st = study_state(uri, exp.name, storage)
        if st is None or not st.launches:
            continue
        rows[exp.name] = {
            "study": exp.name,
            "launches": len(st.launches),
            "state": st.state,
            **st.counts(),
            "last_activity": _stamp(st.last_activity_ms()),
            "in_mlflow": True,
            "ray_folder": st.ray_folder,
        }
    root = _storage_root(storage)
    for folder in _folders(root):
        if "." in folder.name:
            continue  # archived copies (<study>.<time>) belong to their study's row
        state = read_state_file(folder)
        name = state.get("study")
        if not name or name in rows:
            continue
        mtime = int((_mtime(folder) or 0) * 1000)
        rows[name] = {
            "study": name,
            "launches": 0,
            "state": state.get("status", "UNKNOWN"),
            "done": 0,
            "stopped": 0,
            "running": 0,
            "failed": 0,
            "killed": 0,
            "last_activity": _stamp(mtime),
            "in_mlflow": False,
            "ray_folder": str(folder),
        }
    return sorted(rows.values(), key=lambda r: r["last_activity"], reverse=True)


def _folders(root: Place | None) -> list[Place]:  # [] where the store refuses this machine
    try:
        return [f for f in root.children() if f.is_dir()] if root is not None else []
    except OSError:
        return []


def _mtime(folder: Place) -> float | None:
    """A folder's time; an object store keeps none for prefixes: its state file's time."""
    try:
        return folder.mtime() if not folder.is_remote else (folder / STATE_FILE).mtime()
    except OSError:
        return None


def _stamp(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


# --- per variant x init ------------------------------------------------------------------


def _group_key(t: TrialRow, many_domains: bool) -> tuple:
    return (t.family, _phi_sort(t.phi), t.label, t.init, t.train_domain if many_domains else "")


def _phi_sort(phi: str) -> float:
    try:
        return -float(phi)
    except ValueError:
        return 0.0


def _selected(trials: list[TrialRow], metric: str, mode: str) -> list[TrialRow]:
    """Per cell, the finished trial with the best final selection metric."""
    best: dict[str, TrialRow] = {}
    sign = 1.0 if mode == "max" else -1.0
    for t in trials:
        value = t.metrics.get(metric)
        if t.status != "FINISHED" or value is None:
            continue
        old = best.get(t.cell)
        if old is None or sign * value > sign * old.metrics[metric]:
            best[t.cell] = t
    return list(best.values())


def variant_rows(st: StudyState, mode: str = "max", cells: dict | None = None) -> list[dict]:
    """One row per variant x init (x train domain when a study has several).

    Args:
        st: A study read by :func:`study_state`.
        mode: Direction of the study metric.
        cells: Optional ``{(label, init, train): total cells}`` from the study file.

    Returns:
        Rows with trial counts, cells done, the best study metric so far, the selected
        trials' mean metric per evaluation domain (mean over seeds), capacity and time.
    """
    domains = {t.train_domain for t in st.trials}
    many = len(domains) > 1
    only = next(iter(domains)) if len(domains) == 1 else ""
    groups: dict[tuple, list[TrialRow]] = defaultdict(list)
    for t in st.trials:
        groups[_group_key(t, many)].append(t)
    name = st.metric.rsplit("/", 1)[-1]
    rows = []
    for key in sorted(groups):
        trials = groups[key]
        c = Counter(t.state for t in trials)
        values = [t.metrics[st.metric] for t in trials if st.metric in t.metrics]
        chosen = _selected(trials, st.metric, mode)
        cell_states: dict[str, set] = defaultdict(set)
        for t in trials:
            cell_states[t.cell].add(t.state)
        done_cells = sum(1 for s in cell_states.values() if not s & {"running", "killed"})
        total = (cells or {}).get((key[2], key[3], key[4]), len(cell_states))
        row = {
            "variant": key[2],
            "init": key[3],
            "train": key[4] or only,
            "params": _first(trials, keys.M_BACKBONE_PARAMS),
            "cells": f"{done_cells}/{total}",
            "done": c["done"],
            "stopped": c["stopped"],
            "running": c["running"],
            "failed": c["failed"],
            "killed": c["killed"],
            "best": (max(values) if mode == "max" else min(values)) if values else None,
            "selected": _mean(chosen, st.metric),
            "eval": {d: _mean(chosen, keys.eval_metric(d, name)) for d in st.eval_domains},
            "seconds": sum(t.seconds for t in trials),
            "device_seconds": sum(t.metrics.get(keys.M_DEVICE_SECONDS, 0.0) for t in trials),
        }
        rows.append(row)
    return rows


def _first(trials: list[TrialRow], key: str) -> float | None:
    return next((t.metrics[key] for t in trials if key in t.metrics), None)


def _mean(trials: list[TrialRow], key: str) -> float | None:
    values = [t.metrics[key] for t in trials if key in t.metrics]
    return mean(values) if values else None


def failures(st: StudyState) -> list[dict]:
    """Failed trials grouped by their last error line, most frequent cause first."""
    groups: dict[str, list[str]] = defaultdict(list)
    for t in st.trials:
        if t.state == "failed":
            groups[t.error or "(no error recorded)"].append(f"{t.label} {t.init} {t.trial_id}")
    return [
        {"cause": cause, "count": len(ids), "trials": sorted(ids)}
        for cause, ids in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    ]
