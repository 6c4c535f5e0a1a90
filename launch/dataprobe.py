"""The data a study reads, checked where it is read: on every node, by the launch's probe.

The driver may run where no dataset is (a Kubernetes head, a login node), and the nodes
that train may hold different copies. So the driver only lists *what* the study reads
(:func:`data_needs`), and the probe task that runs on every node (``clusterchecks``)
calls :func:`probe_data` there: each dataset present and readable, each split listed and
fingerprinted through the node's fingerprint record (listed once per node, see
``capstudy.data.fingerprints``). :func:`data_checks` turns the nodes' answers into checks
(missing or unreadable data, copies that differ between nodes) and the one fingerprint per
split that pretraining identities use, so the driver never lists a dataset itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from capstudy.errors import CapstudyError
from capstudy.launch.clusterchecks import ERROR, OK, Check


def data_needs(spec: Any) -> list[tuple[str, str]]:
    """``(domain, source)`` of every split the study's trials and pretraining read.

    ``source`` is ``train`` (the published training split; the held-out ``val`` is carved
    from it) or ``eval`` (the published evaluation split).
    """
    from capstudy.pretrain import stage_settings
    from capstudy.study.cells import expand_cells
    from capstudy.study.plan import pretrain_needs

    cells = expand_cells(spec)
    trains = {str(c.values.get("train", spec.fixed.get("train", ""))) for c in cells} - {""}
    needs = {(d, "train") for d in trains} | {(d, "eval") for d in trains | set(spec.evaluate)}
    settings, roots = spec.pretrain.settings(), dict(spec.data)
    for stage in sorted({n.stage for n in pretrain_needs(spec, cells)}):
        st = stage_settings(stage, settings=settings, roots=roots)
        needs |= {(st.domain, "train"), (st.domain, "eval")}  # a stage reports on eval too
    return sorted(needs)


def probe_data(needs: list[tuple[str, str]], roots: Mapping[str, str]) -> dict[str, Any]:
    """On one node: which datasets are missing or unreadable, and each split's fingerprint.

    Synthetic datasets are generated here if the node lacks them (trials would do the same).
    Paths are resolved with the node's own environment (``CAPSTUDY_DATA``) and the study's
    ``data:`` section.
    """
    from capstudy.data.api import ensure_dataset
    from capstudy.data.domains import DATASETS, dataset_root, parse_domain
    from capstudy.data.fingerprints import cached_source_fingerprint, split_key

    missing, unreadable, fingerprints = [], [], {}
    present = {}
    for dataset in sorted({parse_domain(d)[0] for d, _ in needs}):
        root = dataset_root(dataset, roots)
        try:
            ensure_dataset(dataset, roots)
        except CapstudyError:
            missing.append(f"{dataset} ({root})")
            continue
        if not os.access(root, os.R_OK | os.X_OK):
            unreadable.append(f"{dataset} ({root}: permission denied)")
            continue
        present[dataset] = root
    for domain, source in needs:
        dataset, modality = parse_domain(domain)
        if dataset not in present:
            continue
        try:
            fp = cached_source_fingerprint(
                DATASETS[dataset].format, present[dataset], source, modality
            )
        except (CapstudyError, OSError) as exc:
            unreadable.append(f"{domain} {source} ({exc})")
            continue
        fingerprints[split_key(domain, source)] = fp
    return {"missing": missing, "unreadable": unreadable, "fingerprints": fingerprints}


def data_checks(
    answers: list[dict[str, Any]], names: Mapping[str, str]
) -> tuple[list[Check], dict[str, str]]:
    """Checks from every node's :func:`probe_data` answer, and the agreed fingerprints.

    Args:
        answers: Per node: ``{"node": id, "data": probe_data(...)}``.
        names: Node id -> a name to print.
    """
    checks: list[Check] = []

    def listed(field: str) -> list[str]:
        return [
            f"{names.get(a['node'], a['node'])}: {', '.join(a['data'][field])}"
            for a in answers
            if a["data"][field]
        ]

    if lacking := listed("missing"):
        checks.append(
            Check(
                "datasets",
                ERROR,
                f"nodes lack datasets the study reads ({'; '.join(lacking)}); put them at "
                "that path on every node (docs/guide/scaling-out.md: datasets are shared) or set "
                "CAPSTUDY_DATA / the study's data: section to where they are",
            )
        )
    if broken := listed("unreadable"):
        checks.append(
            Check(
                "datasets",
                ERROR,
                f"nodes cannot read datasets the study reads ({'; '.join(broken)}); fix the "
                "files or their permissions (docs/guide/data.md lists each format's layout)",
            )
        )
    seen: dict[str, dict[str, list[str]]] = {}
    for a in answers:
        for key, fp in a["data"]["fingerprints"].items():
            seen.setdefault(key, {}).setdefault(fp, []).append(names.get(a["node"], a["node"]))
    differing = {k: v for k, v in seen.items() if len(v) > 1}
    if differing:
        text = "; ".join(
            f"{key}: " + ", ".join(f"{fp} on {', '.join(nodes)}" for fp, nodes in fps.items())
            for key, fps in sorted(differing.items())
        )
        checks.append(
            Check(
                "datasets",
                ERROR,
                f"nodes hold different copies of the data ({text}); trials would train on "
                "different data depending on where they run: make the copies equal (one "
                "shared folder, or the same files on every node)",
            )
        )
    agreed = {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}
    if answers and not checks:
        checks.append(
            Check("datasets", OK, f"{len(agreed)} splits present and equal on {len(answers)} nodes")
        )
    return checks, agreed


def check_local_datasets(spec: Any) -> None:
    """Fail before anything starts when a real dataset the study reads is not on disk.

    A single-machine launch only: a presence check, no listing (the probe lists and
    fingerprints each split once Ray is up). Synthetic datasets are generated on demand.
    """
    from capstudy.data.domains import SYNTHETIC, dataset_root, parse_domain

    datasets = {parse_domain(domain)[0] for domain, _ in data_needs(spec)}
    missing = sorted(
        f"{name} (looked in {dataset_root(name, spec.data)})"
        for name in datasets
        if name not in SYNTHETIC and not dataset_root(name, spec.data).is_dir()
    )
    if missing:
        raise CapstudyError(
            f"{spec.source}: the study reads datasets that are not on this machine: "
            f"{', '.join(missing)}. Put them there (docs/guide/data.md lists each "
            "layout), set CAPSTUDY_DATA, or name their folders in the study's `data:` section."
        )
