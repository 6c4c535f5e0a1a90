"""Engine test fixtures: small synthetic datasets and caches shared by the whole session.

Generating and decoding the default-size synthetic benchmark takes ~30 s; a tenth of it is
enough for tiny-model tests and is written once per test process, not once per test.

Not a ``conftest.py``: a second module named ``conftest`` would shadow ``tests/conftest.py``
for the tests that import ``run_cli`` from it. Test modules import these fixtures by name.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest

# Tenth-size synthetic data: synth_a and synth_b 40/10 images, synth_coco 60/10,
# synth_imagenet 4/1 per class.
SCALE = 0.1


@functools.cache
def shared_data() -> tuple[Path, Path]:
    """Folder of small synthetic datasets and a cache folder, written once per process."""
    from capstudy.data.synth import ensure_synthetic

    root = Path(tempfile.mkdtemp(prefix="capstudy-engine-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    data, cache = root / "data", root / "cache"
    for name in ("synth_a", "synth_b", "synth_coco", "synth_imagenet"):
        ensure_synthetic(name, data / name, seed=0, scale=SCALE)
    return data, cache


@pytest.fixture(autouse=True)
def small_data(capstudy_home, monkeypatch):
    """Point this test's data and cache at the shared small datasets."""
    data, cache = shared_data()
    monkeypatch.setenv("CAPSTUDY_DATA", str(data))
    monkeypatch.setenv("CAPSTUDY_CACHE", str(cache))
    return data


def make_tiny_config(**changes):
    """A B-7 detection trial at 64 px on a few images: about a second per epoch on 1 CPU."""
    from capstudy.config import TrialConfig

    values = dict(
        family="efficientnet_b0",
        phi=-7,
        image_size=64,
        batch_size=8,
        epochs=2,
        lr=5e-3,
        max_train_images=32,
        max_eval_images=8,
        threads=1,
        # The tests' choice: exact repeats and resumes on a GPU too.
        deterministic=True,
    )
    values.update(changes)
    return TrialConfig.from_dict(values)
