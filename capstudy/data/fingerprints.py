"""Source fingerprints, listed once per node and then read from a small record.

A split's fingerprint (:func:`capstudy.data.readers.source_fingerprint_of`: file names
and sizes, label files' bytes) needs the split's file list: for ImageNet that is 1.28 M files to
list and stat. Launches, resumes and every trial ask for it (pretraining identities, cache
keys, the trial's data tags), so it is computed once per (dataset folder, split, modality)
per node and kept in ``<cache root>/fingerprints/`` (node-local, like the caches).

**How changed data is noticed.** With the fingerprint the record keeps a *stamp*: the
modification time and size of every folder that holds a source file (each folder up to the
dataset root) and of every label file (``.xml``/``.json``/``.txt``). Checking the stamp stats
those paths only (about a thousand folders for ImageNet, never its images). Adding, removing
or renaming any file changes its folder's modification time; editing a label file changes
its own: either makes the record stale, and the split is listed again. What the stamp cannot
see is an image overwritten in place under the same name (its folder's time does not change);
the fingerprint, which hashes image sizes, is then refreshed by removing the record (or the
``fingerprints/`` folder). Records are written atomically under a lock, so concurrent trials
on a node list a split once between them; ``listings`` in the record counts the listings. A
folder modified within 50 ms of its listing is not trusted (a second change inside the file
system's clock tick would keep its time): its record is marked racy and the next call lists
again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from capstudy import paths
from capstudy.data.readers import CONTENT_SUFFIXES, list_sources, source_fingerprint_of
from capstudy.util import atomic_write_text, file_lock

RECORD_DIR = "fingerprints"
_TICK_NS = 50_000_000  # > the kernel's coarse file-time tick (1-10 ms)


def split_key(domain: str, source: str) -> str:
    """How a split is named in maps of fingerprints (the launch's probe answers)."""
    return f"{domain}:{source}"


def record_path(fmt: str, root: Path, split: str, modality: str) -> Path:
    """Where the record of one (format, folder, split, modality) lives on this node."""
    ident = f"{fmt}|{Path(root).resolve()}|{split}|{modality}"
    name = hashlib.sha256(ident.encode()).hexdigest()[:20]
    return paths.cache_root() / RECORD_DIR / f"{Path(root).name}-{split}-{modality}-{name}.json"


def _stamp(root: Path, rels: list[str]) -> list[list[int]] | None:
    """(mtime_ns, size) of each path under ``root``; None if one is gone."""
    out = []
    for rel in rels:
        try:
            st = os.stat(root / rel)
        except OSError:
            return None
        out.append([st.st_mtime_ns, st.st_size])
    return out


def _stamp_paths(root: Path, files: list[Path]) -> list[str]:
    """Folders holding the files (each up to ``root``) and the label files, relative."""
    root = Path(root).resolve()
    folders: set[Path] = {root}
    labels: set[Path] = set()
    for f in files:
        f = Path(f).resolve()
        if f.suffix.lower() in CONTENT_SUFFIXES:
            labels.add(f)
        parent = f.parent
        while parent not in folders and parent != parent.parent and root in parent.parents:
            folders.add(parent)
            parent = parent.parent
    rel = [os.path.relpath(p, root) for p in sorted(folders | labels)]
    return rel


def _read(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing, or unreadable: list again and rewrite it
    ok = isinstance(record, dict) and {"fingerprint", "paths", "stamp"} <= set(record)
    return record if ok else None


def _fresh(record: dict | None, root: Path) -> str | None:
    """The record's fingerprint if its stamp still matches the files on disk."""
    if record is None or record.get("racy", True):
        return None
    return record["fingerprint"] if _stamp(root, record["paths"]) == record["stamp"] else None


def cached_source_fingerprint(fmt: str, root: Path, split: str, modality: str) -> str:
    """The split's fingerprint, listing its files at most once per node while the data stays
    the same (see the module doc)."""
    root = Path(root)
    path = record_path(fmt, root, split, modality)
    found = _fresh(_read(path), root)
    if found is not None:
        return found
    with file_lock(path.with_suffix(".lock")):
        previous = _read(path)
        found = _fresh(previous, root)  # another process may have listed it meanwhile
        if found is not None:
            return found
        started = time.time_ns()
        files = list_sources(fmt, root, split, modality)
        rels = _stamp_paths(root, files)
        stamp = _stamp(root, rels)
        fingerprint = source_fingerprint_of(files)
        # A folder changed while (or just before) it was listed may carry a time that a later
        # change within the clock's coarse tick would repeat (git's "racy clean" problem):
        # such a record is kept (it counts the listing) but not trusted: the next call lists.
        racy = stamp is None or any(t >= started - _TICK_NS for t, _ in stamp)
        record = {
            "fingerprint": fingerprint,
            "root": str(root),
            "split": split,
            "modality": modality,
            "listings": (previous or {}).get("listings", 0) + 1,
            "racy": racy,
            "paths": rels,
            "stamp": stamp,
        }
        atomic_write_text(path, json.dumps(record))
        return fingerprint


def listings(fmt: str, root: Path, split: str, modality: str) -> int:
    """How many times this node listed the split for its record (0: never)."""
    record = _read(record_path(fmt, root, split, modality))
    return int(record.get("listings", 0)) if record else 0
