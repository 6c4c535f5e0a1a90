"""The small helpers every layer shares: atomic writes, file digests, file locks, the MLflow
client (pure).

Each exists once, here. Stdlib only at import (MLflow is imported when a client is asked
for), so the study compiler and the analysis may use it too.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from capstudy import paths


def file_sha256(path: Path | str) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _temp_sibling(path: Path) -> Path:
    # Same folder (same filesystem: the rename is atomic), a name no other writer picks
    # (pid + random), and a leading dot so listings and globs skip it.
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path | str, *, replace_dir: bool = False) -> Iterator[Path]:
    """Write to a temporary sibling of ``path``; it becomes ``path`` only if the block succeeds.

    Readers never see a half-written file or folder: the temporary is renamed into place
    (``os.replace``, atomic on POSIX) after the block, and removed if the block raises. For a
    folder, create it inside the block (``tmp.mkdir()``).

    Args:
        path: The final file or folder.
        replace_dir: An existing folder at ``path`` is removed first (a rename cannot replace
            a non-empty folder). Only for folders whose writers hold a lock (see
            :func:`file_lock`), since a reader could see no folder for an instant.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        if replace_dir and path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def remove_stale_temporaries(path: Path | str) -> None:
    """Remove temporaries of ``path`` left by writers that were killed (call under a lock)."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        _remove(stale)


@contextmanager
def file_lock(path: Path | str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the block.

    flock is per node: it is not reliable across NFS clients, so lock files, like the caches
    they guard, belong on node-local disk (docs/guide/scaling-out.md).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def named_lock(name: str) -> Any:
    """:func:`file_lock` on ``<capstudy home>/locks/<name>.lock``."""
    return file_lock(paths.home() / "locks" / f"{name}.lock")


def mlflow_client(tracking_uri: str | None = None) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` (default: capstudy's local SQLite store)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri or paths.default_tracking_uri())


# Lines written to a file or a pipe (a log) keep their length up to this many columns; rich
# would otherwise wrap them at 80, mid-phrase, and cut table headers.
LOG_COLUMNS = 200


def console(**kwargs: Any) -> Any:
    """A rich ``Console`` for the commands' output: the terminal's width in a terminal; in a
    log (not a terminal, no ``COLUMNS`` set) :data:`LOG_COLUMNS` wide, lines never wrapped."""
    from rich.console import Console

    made = Console(**kwargs)
    if made.is_terminal or "COLUMNS" in os.environ or "width" in kwargs:
        return made
    return Console(**{"width": LOG_COLUMNS, "soft_wrap": True, **kwargs})
