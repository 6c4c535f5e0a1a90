"""Where capstudy keeps its state on a machine (pure: stdlib only).

Everything lives under one home folder so a study is easy to find, move or delete:

* ``$CAPSTUDY_HOME`` (default ``~/.capstudy``)
  * ``data/``      datasets, one folder per dataset name (the synthetic benchmark is written here)
  * ``cache/``     decoded, resized image arrays shared by every trial on the node
  * ``mlflow.db``  the default MLflow tracking store (SQLite)
  * ``mlartifacts/`` the default MLflow artifact root
  * ``ray_results/`` Ray Tune storage (checkpoints, experiment state for ``--resume``)

Tests point ``CAPSTUDY_HOME`` at a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The capstudy home folder (``$CAPSTUDY_HOME`` or ``~/.capstudy``), created on demand."""
    root = Path(os.environ.get("CAPSTUDY_HOME", Path.home() / ".capstudy")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def data_root() -> Path:
    """Folder holding datasets by name (``$CAPSTUDY_DATA`` overrides ``<home>/data``)."""
    env = os.environ.get("CAPSTUDY_DATA")
    return Path(env).expanduser().resolve() if env else home() / "data"


def cache_root() -> Path:
    """Folder holding decoded image caches (``$CAPSTUDY_CACHE`` overrides ``<home>/cache``)."""
    env = os.environ.get("CAPSTUDY_CACHE")
    return Path(env).expanduser().resolve() if env else home() / "cache"


def default_tracking_uri() -> str:
    """MLflow tracking URI: ``$MLFLOW_TRACKING_URI`` or a SQLite store in the home folder."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env if env else f"sqlite:///{home() / 'mlflow.db'}"


def default_artifact_root() -> Path:
    """Artifact folder used with the default SQLite store."""
    return home() / "mlartifacts"


def ray_storage() -> Path:
    """Ray Tune storage path for local runs (clusters pass a shared path instead)."""
    return home() / "ray_results"
