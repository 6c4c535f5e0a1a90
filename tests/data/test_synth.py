"""The synthetic benchmark: deterministic bytes, valid layouts, on-demand generation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from clitools import run_cli

from capstudy import paths
from capstudy.data import get_split
from capstudy.data.check import check_dataset
from capstudy.data.synth import write_dataset


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name in ("synth_a", "synth_b", "synth_coco"):
        write_dataset(name, tmp_path / "s0" / name, seed=0, scale=0.01)
        write_dataset(name, tmp_path / "s0b" / name, seed=0, scale=0.01)
        write_dataset(name, tmp_path / "s1" / name, seed=1, scale=0.01)
        assert _digest(tmp_path / "s0" / name) == _digest(tmp_path / "s0b" / name)
        assert _digest(tmp_path / "s0" / name) != _digest(tmp_path / "s1" / name)
        report = check_dataset(tmp_path / "s0" / name)
        assert report.errors == [] and report.warnings == []


def test_classification_proxy_has_120_distinct_classes(tmp_path):
    root = tmp_path / "synth_imagenet"
    write_dataset("synth_imagenet", root, seed=0, scale=0.03)
    classes = sorted(p.name for p in (root / "train").iterdir())
    assert len(classes) == 120 and len(set(c.split("_", 1)[1] for c in classes)) == 120
    split = get_split("synth_imagenet/rgb", "train", 32, roots={"synth_imagenet": str(root)})
    assert split.targets.max() == 119


def test_rgb_and_thermal_are_aligned_but_look_different(tmp_path):
    root = tmp_path / "synth_a"
    write_dataset("synth_a", root, seed=0, scale=0.02)
    roots = {"synth_a": str(root)}
    rgb = get_split("synth_a/rgb", "train", (160, 128), roots=roots)
    ir = get_split("synth_a/ir", "train", (160, 128), roots=roots)
    for a, b in zip(rgb.boxes, ir.boxes, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sum(len(b) for b in rgb.boxes) >= len(rgb)  # at least one object per scene
    # Objects are warm: inside boxes the thermal image is brighter than the scene around.
    inside, everywhere = [], []
    for img, boxes in zip(ir.images, ir.boxes, strict=True):
        for x1, y1, x2, y2 in boxes.astype(int):
            inside.append(img[y1:y2, x1:x2].mean())
        everywhere.append(img.mean())
    assert np.mean(inside) > np.mean(everywhere) + 15
    assert not np.array_equal(rgb.images[0], ir.images[0])


def test_on_demand_generation(monkeypatch):
    monkeypatch.setenv("CAPSTUDY_SYNTH_SCALE", "0.01")
    split = get_split("synth_b/ir", "eval", 64)
    assert len(split) == 1 and (paths.data_root() / "synth_b" / "Annotations").is_dir()


def test_cli_synth_and_check(tmp_path, capsys):
    out = tmp_path / "data"
    args = ["data", "synth", "--root", str(out), "--only", "synth_b", "--scale", "0.01"]
    assert run_cli(args) == 0
    assert run_cli([*args, "--seed", "0"]) == 0  # same seed: kept
    assert run_cli([*args, "--seed", "5"]) == 2  # would overwrite: refused with a message
    assert "--force" in capsys.readouterr().err
    assert run_cli(["data", "check", str(out / "synth_b")]) == 0
    (out / "synth_b" / "infrared" / "test" / "190001.jpg").unlink()
    assert run_cli(["data", "check", str(out / "synth_b")]) == 1
    assert "190001.jpg" in capsys.readouterr().out


def test_outdated_synthetic_copy_is_regenerated(tmp_path):
    import json

    from capstudy.data.synth import MARKER, VERSION, generate_all

    generate_all(tmp_path, names=("synth_b",), scale=0.01)
    marker = tmp_path / "synth_b" / MARKER
    old = {**json.loads(marker.read_text()), "version": VERSION - 1}
    marker.write_text(json.dumps(old))  # as an older generator (3-class synth_b) left it
    assert generate_all(tmp_path, names=("synth_b",), scale=0.01)["synth_b"] > 0
    assert json.loads(marker.read_text())["version"] == VERSION
