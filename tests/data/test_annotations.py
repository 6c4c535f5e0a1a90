"""Annotation conventions: 0-based VOC boxes at the border, VOC difficult, COCO crowd."""

from __future__ import annotations

import json

import numpy as np
from clitools import run_cli
from data_fixtures import H, W, voc, write_flir_aligned, write_flir_v2, write_llvip

from capstudy.data import get_split
from capstudy.data.check import check_dataset


def _zero_based_at_border(path, difficult=()):
    # A 0-based converter writes the left/top border as 0 and the right/bottom as W-1 / H-1
    # (or W / H); read as 1-based, that is one pixel outside on the left and top.
    voc(path, [("person", 0, 0, W, H), ("car", 0, 5, 12, H - 1)], difficult=difficult)


def test_zero_based_border_boxes_pass_check_and_are_counted(tmp_path, capsys):
    llvip = write_llvip(tmp_path / "llvip")
    _zero_based_at_border(llvip / "Annotations" / "010001.xml")
    flir = write_flir_aligned(tmp_path / "flir")
    _zero_based_at_border(flir / "Annotations" / "FLIR_00001_PreviewData.xml")
    v2 = write_flir_v2(tmp_path / "v2")
    coco = v2 / "images_rgb_train" / "coco.json"
    doc = json.loads(coco.read_text())
    doc["annotations"][0]["bbox"] = [-1.0, -0.5, 12.0, H + 1.0]
    coco.write_text(json.dumps(doc))
    for root in (llvip, flir, v2):
        report = check_dataset(root)
        assert report.errors == [], report.errors
        assert any("up to 1 px outside" in p.message for p in report.warnings)
        assert run_cli(["data", "check", str(root)]) == 0
    split = get_split("llvip/rgb", "train", (W, H), roots={"llvip": str(llvip)})
    np.testing.assert_allclose(split.boxes[0], [[0, 0, W, H], [0, 4, 12, H - 1]])
    assert any("2 box(es) up to 1 px" in n for n in split.notes)


def test_far_outside_box_and_other_faults_still_fail_check(tmp_path):
    root = write_llvip(tmp_path / "llvip")
    voc(root / "Annotations" / "010001.xml", [("person", -5, 0, 10, 10)])
    assert run_cli(["data", "check", str(root)]) == 1
    voc(root / "Annotations" / "010001.xml", [("person", 1, 1, 10, 10)])
    assert run_cli(["data", "check", str(root)]) == 0
    (root / "visible" / "train" / "010002.jpg").unlink()
    assert run_cli(["data", "check", str(root)]) == 1


def test_voc_difficult_becomes_an_ignore_region(tmp_path):
    root = write_llvip(tmp_path / "llvip")
    objects = [("person", 3, 5, 14, 20), ("person", 20, 4, 30, 30)]
    voc(root / "Annotations" / "190001.xml", objects, difficult={1})
    split = get_split("llvip/ir", "eval", (W, H), roots={"llvip": str(root)})
    np.testing.assert_allclose(split.boxes[0], [[2, 4, 14, 20]])  # training targets
    np.testing.assert_allclose(split.ignore_boxes[0], [[19, 3, 30, 30]])
    assert split.ignore_labels[0].tolist() == [1]
    regions = split.ignore_regions()
    assert len(regions) == len(split) and len(regions[1]["boxes"]) == 0


def test_coco_crowd_becomes_an_ignore_region(tmp_path):
    root = write_flir_v2(tmp_path / "v2")
    coco = root / "images_thermal_val" / "coco.json"
    doc = json.loads(coco.read_text())
    doc["annotations"][1]["iscrowd"] = 1  # image 1's second object (bike)
    coco.write_text(json.dumps(doc))
    assert check_dataset(root).errors == []
    split = get_split("flir_v2/ir", "eval", (W, H), roots={"flir_v2": str(root)})
    assert split.labels[0].tolist() == [1] and split.ignore_labels[0].tolist() == [3]
    assert split.labels[1].tolist() == [1, 3] and len(split.ignore_boxes[1]) == 0
