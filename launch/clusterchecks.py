"""Settings a cluster launch needs, checked before anything runs (and shown by ``--dry-run``).

Five things fail late, slowly or silently on a multi-node cluster, so they are checked first:

- the tracking URI: with ``--address`` the trials run on other machines, and a ``sqlite:`` or
  ``file:`` URI names a file on *this* one (each worker would open an empty store of its own:
  every pretrained init fails); an ``http`` server must answer from every node and take the
  credentials there (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, as the MLflow client reads
  them; a server with authentication answers ``/health`` to anyone, so a call that needs a
  login is made too); credentials written into the URI are refused (it is printed and logged);
- the Ray storage: checkpoints written on one node are restored on another, so a file the
  driver writes there must be readable on every node (a node-local folder is refused); a URI
  (``s3://``, ``gs://``, anything pyarrow opens) must first open, and take and give back a
  probe object from the driver, before Ray starts (:func:`storage_checks`);
- node resources against the study's ``resources`` (and ``pretrain.resources``): a trial or
  pretraining stage that fits no node never starts,
  ``gpu > 0`` needs GPUs, and a node whose CPUs run out before its GPUs leaves GPUs idle
  (``cpu: 4, gpu: 0.25`` needs 16 CPUs per GPU) -- a warning with the number to use;
- the data: every split the study reads is present, readable and the same on every node
  (``dataprobe``, run inside the same probe task; the driver itself never lists a dataset).

Every problem names the setting and the fix.
"""

from __future__ import annotations

import math
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capstudy.errors import CapstudyError
from capstudy.launch.login import PASSWORD_ENV, USER_ENV, login_refused, redacted
from capstudy.storage import Place, is_uri, place

OK, WARN, ERROR = "ok", "warning", "error"
MLFLOW_SERVER_HINT = (
    "start a tracking server with authentication on the head node, e.g. "
    "`launch/cluster/mlflow-server.sh $HOME/mlflow /shared/mlartifacts` (mlflow server "
    "--app-name basic-auth --host 0.0.0.0 --port 5000, its admin user from "
    "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD in the environment; docs/guide/"
    "scaling-out.md), and pass --tracking-uri http://<head>:5000"
)


@dataclass(frozen=True)
class Check:
    """One checked setting: its name, ``ok``/``warning``/``error``, and what was found."""

    setting: str
    level: str
    message: str


def is_local_uri(uri: str) -> bool:
    """A tracking URI that names a file on this machine (SQLite, file store, bare path)."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def server_answers(uri: str, timeout: float = 5.0) -> str | None:
    """None if the MLflow server at ``uri`` answers ``/health``, else why not."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as resp:
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except OSError as exc:
        return str(exc)


def tracking_checks(uri: str, address: str | None) -> list[Check]:
    """The tracking URI against where trials run, and its server's login (no Ray needed)."""
    if urllib.parse.urlsplit(uri).password is not None:
        return [
            Check(
                "--tracking-uri",
                ERROR,
                f"{redacted(uri)} has a password in it, and the URI is printed and recorded; "
                f"pass the URI without it and set {USER_ENV} / {PASSWORD_ENV} in the "
                "environment instead",
            )
        ]
    if address is not None and is_local_uri(uri):
        return [
            Check(
                "--tracking-uri",
                ERROR,
                f"{uri} is a file on this machine, but with --address {address} trials run "
                "on other nodes, which would each open an empty store of their own; "
                + MLFLOW_SERVER_HINT,
            )
        ]
    if uri.startswith(("http://", "https://")):
        why = server_answers(uri)
        if why is not None:
            return [
                Check(
                    "--tracking-uri",
                    ERROR,
                    f"no MLflow server answers at {uri} ({why}); {MLFLOW_SERVER_HINT}",
                )
            ]
        refused = login_refused(uri)
        if refused is not None:
            return [Check("--tracking-uri", ERROR, f"the MLflow server at {uri}: {refused}")]
        return [Check("--tracking-uri", OK, f"{uri} answers")]
    return [Check("--tracking-uri", OK, f"{uri} (local store; single-machine launch)")]


def resource_checks(
    nodes: list[dict[str, Any]], cpu: float, gpu: float, key: str = "resources"
) -> list[Check]:
    """The study's per-trial ``resources`` (or ``pretrain.resources``) against the nodes.

    Args:
        nodes: ``{"node": name, "CPU": n, "GPU": n}`` per alive node.
        cpu: ``resources.cpu`` of one trial.
        gpu: ``resources.gpu`` of one trial.
        key: The study key checked: ``resources`` (trials, packed on GPUs: the CPU:GPU
            ratio is checked too) or ``pretrain.resources`` (one task per stage: it only
            has to fit a node).
    """
    what = "trial" if key == "resources" else "pretraining run"
    want = f"{key} {{cpu: {cpu:g}, gpu: {gpu:g}}}"
    if gpu > 0 and not any(n.get("GPU", 0) > 0 for n in nodes):
        return [
            Check(
                f"{key}.gpu",
                ERROR,
                f"{want} asks for GPUs but no node has one; set {key}.gpu: 0 or add GPU nodes",
            )
        ]
    fits = [n for n in nodes if n.get("CPU", 0) >= cpu and n.get("GPU", 0) >= gpu]
    if not fits:
        biggest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
        return [
            Check(
                key,
                ERROR,
                f"no node fits one {what} of {want} (largest: "
                f"{biggest.get('CPU', 0):g} CPUs, {biggest.get('GPU', 0):g} GPUs); lower "
                f"{key} in the study file or add bigger nodes",
            )
        ]
    if key != "resources":
        return [Check(key, OK, f"{len(fits)} of {len(nodes)} nodes fit {want}")]
    checks = [Check("resources", OK, f"{len(fits)} of {len(nodes)} nodes fit {want}")]
    if gpu > 0:
        for n in fits:
            by_gpu = math.floor(n["GPU"] / gpu + 1e-9)
            by_cpu = math.floor(n["CPU"] / cpu + 1e-9) if cpu > 0 else by_gpu
            if by_cpu < by_gpu:
                best = n["CPU"] / by_gpu
                checks.append(
                    Check(
                        "resources.cpu",
                        WARN,
                        (
                            f"node {n['node']}: {n['CPU']:g} CPUs run {by_cpu} trials of "
                            f"{want}, but its {n['GPU']:g} GPUs have room for {by_gpu} "
                            f"({cpu / gpu:g} CPUs per GPU needed); set resources.cpu to "
                            f"{math.floor(best * 100) / 100:g} or less to fill them"
                        ),
                    )
                )
    return checks


STORAGE_FIX = (
    "pass a URI pyarrow.fs.FileSystem.from_uri opens and this machine can write to (an "
    "existing bucket, credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the "
    "GOOGLE_APPLICATION_CREDENTIALS file; S3-compatible stores: "
    "s3://bucket/path?endpoint_override=host:port&scheme=http), or a path every node mounts"
)


def storage_checks(storage: Place | str | Path) -> list[Check]:
    """A remote ``--storage`` (a URI): opened, and a probe object written, read back and
    removed from the driver -- before Ray or any run starts. A path: [] (the per-node probe
    of :func:`cluster_checks` writes there once Ray is up).

    Failing writes to an unreachable endpoint return after pyarrow's own retries (seconds).
    """
    if not isinstance(storage, Place):
        if not is_uri(storage):
            return []
        try:
            storage = place(storage)
        except CapstudyError as exc:
            return [Check("--storage", ERROR, str(exc).removeprefix("--storage "))]
    if not storage.is_remote:
        return []
    probe = storage / f".capstudy-probe-{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    try:
        probe.write_text(token)
        try:
            back = probe.read_text()
        finally:
            probe.delete()
    except OSError as exc:  # pyarrow raises OSError for S3/GCS errors (no bucket, refused)
        return [Check("--storage", ERROR, f"{storage}: cannot write there ({exc}); {STORAGE_FIX}")]
    if back != token:
        return [Check("--storage", ERROR, f"{storage}: a probe object read back changed")]
    return [Check("--storage", OK, f"{storage} (remote; a probe object written and read back)")]


def _probe(path: str, token: str, uri: str, needs: list, roots: dict) -> dict[str, Any]:
    """On one node: can it read the driver's file in storage, reach the tracking server, and
    read (and fingerprint) the data the study reads?"""
    import ray

    from capstudy.launch.dataprobe import probe_data

    try:
        storage = place(path).read_text() == token
    except (OSError, CapstudyError):
        storage = False
    web = uri.startswith(("http://", "https://"))
    reach = server_answers(uri) if web else None
    login = login_refused(uri) if web and reach is None else None
    node = ray.get_runtime_context().get_node_id()
    return {
        "node": node,
        "storage": storage,
        "tracking": reach,
        "login": login,
        "data": probe_data(needs, roots),
    }


def cluster_checks(
    storage: Place | Path | str,
    uri: str,
    cpu: float,
    gpu: float,
    needs: list[tuple[str, str]] | None = None,
    roots: dict[str, str] | None = None,
    pretrain: tuple[float, float] | None = None,
) -> tuple[list[Check], dict[str, str]]:
    """Checks that need the connected Ray cluster: one probe task pinned to every alive node.

    Args:
        storage: Ray Tune storage (``--storage``: a path or a URI; every node reads a probe
            file the driver writes there -- a URI's nodes need its credentials too).
        uri: The tracking URI.
        cpu: ``resources.cpu`` of one trial.
        gpu: ``resources.gpu`` of one trial.
        needs: ``(domain, source)`` splits the study reads (``dataprobe.data_needs``); every
            node must have them, equal (trials may run anywhere).
        roots: The study's ``data:`` section (folders as the nodes see them).
        pretrain: ``pretrain.resources`` (cpu, gpu) when the study sets them and pretrains:
            a stage that fits no node would wait forever.

    Returns:
        The checks, and each split's fingerprint as the nodes computed it (``domain:source``).
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from capstudy.launch.dataprobe import data_checks

    alive = [n for n in ray.nodes() if n.get("Alive")]
    nodes = [
        {
            "node": n.get("NodeManagerAddress", n["NodeID"]),
            "id": n["NodeID"],
            "CPU": n["Resources"].get("CPU", 0),
            "GPU": n["Resources"].get("GPU", 0),
        }
        for n in alive
    ]
    checks = resource_checks(nodes, cpu, gpu)
    if pretrain is not None:
        checks += resource_checks(nodes, *pretrain, key="pretrain.resources")
    storage = storage if isinstance(storage, Place) else place(storage)
    token = uuid.uuid4().hex
    storage.mkdir()
    probe_file = storage / f".capstudy-probe-{token}"
    probe_file.write_text(token)
    probe = ray.remote(num_cpus=0)(_probe)
    try:
        answers = ray.get(
            [
                probe.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(n["id"], soft=False)
                ).remote(str(probe_file), token, uri, list(needs or []), dict(roots or {}))
                for n in nodes
            ],
            timeout=600,  # a first listing of a large dataset on a node takes minutes
        )
    finally:
        probe_file.delete()
    names = {n["id"]: n["node"] for n in nodes}
    checks.append(_storage_check(storage, answers, names))
    found, fingerprints = data_checks(answers, names) if needs else ([], {})
    checks += found
    cut_off = [
        f"{names.get(a['node'], a['node'])} ({a['tracking']})" for a in answers if a["tracking"]
    ]
    if cut_off:
        checks.append(
            Check(
                "--tracking-uri",
                ERROR,
                f"{uri} does not answer from nodes "
                f"{', '.join(cut_off)}; serve it on an address they reach "
                "(mlflow server --host 0.0.0.0) and pass that address",
            )
        )
    refused = [
        f"{names.get(a['node'], a['node'])} ({a['login']})" for a in answers if a.get("login")
    ]
    if refused:
        checks.append(
            Check(
                "--tracking-uri",
                ERROR,
                f"the MLflow server at {uri} refuses nodes {', '.join(refused)}; with --address "
                f"set {USER_ENV} / {PASSWORD_ENV} in the environment where each node's "
                "`ray start` runs (the driver does not send its own)",
            )
        )
    return checks, fingerprints


def _storage_check(storage: Place, answers: list, names: dict) -> Check:
    unshared = [names.get(a["node"], a["node"]) for a in answers if not a["storage"]]
    if unshared and storage.is_remote:
        return Check(
            "--storage",
            ERROR,
            f"{storage}: nodes {', '.join(unshared)} cannot read an object the driver wrote "
            "there (credentials or endpoint missing where their `ray start` ran); give every "
            "node the same access to the store",
        )
    if unshared:
        return Check(
            "--storage",
            ERROR,
            (
                f"{storage} is not shared: nodes {', '.join(unshared)} cannot read a "
                "file the driver wrote there, so trials could not restore checkpoints on "
                "another node; pass --storage on a filesystem every node mounts at the "
                "same path (NFS, Lustre) or an s3:// / gs:// URI"
            ),
        )
    return Check("--storage", OK, f"{storage} readable on all {len(answers)} nodes")


def raise_on_errors(checks: list[Check], lead: str = "cannot launch: ") -> None:
    """One :class:`CapstudyError` listing every failed check (nothing has started yet)."""
    errors = [c for c in checks if c.level == ERROR]
    if errors:
        raise CapstudyError(lead + "; ".join(f"{c.setting}: {c.message}" for c in errors))


def render(checks: list[Check]) -> str:
    """Checks as lines for ``--dry-run`` and the launch log."""
    return "\n".join(f"  [{c.level}] {c.setting}: {c.message}" for c in checks)
