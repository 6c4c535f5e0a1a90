"""Readers on every published layout, good and broken, through get_split and data check."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import (
    H,
    W,
    truncate,
    voc,
    write_coco,
    write_domainnet,
    write_flir_aligned,
    write_flir_v2,
    write_imagefolder,
    write_llvip,
)

from capstudy.data import dataset_fingerprint, get_split, num_classes
from capstudy.data.check import check_dataset
from capstudy.data.domains import detect_format
from capstudy.errors import CapstudyError


def test_flir_aligned_pairs_labels_and_split_names(tmp_path):
    root = write_flir_aligned(tmp_path / "flir")
    roots = {"flir": str(root)}
    rgb = get_split("flir/rgb", "train", (80, 64), roots=roots)
    ir = get_split("flir/ir", "eval", (80, 64), roots=roots)
    assert (len(rgb), len(ir)) == (3, 2)  # align_validation is the published eval split
    assert rgb.class_names == ("person", "car", "bicycle")
    # person and bike→bicycle kept; dog is outside the map and is reported, not silent.
    assert rgb.labels[0].tolist() == [1, 3]
    assert any("'dog'" in n for n in rgb.notes)
    # VOC (3, 5, 14, 20) is 0-based (2, 4, 14, 20), scaled x2 to the 80x64 cache.
    np.testing.assert_allclose(rgb.boxes[0][0], [4, 8, 28, 40])
    assert rgb.images.shape == (3, 64, 80, 3) and not rgb.images.flags.writeable
    # Thermal is grey replicated to 3 channels; RGB and thermal differ.
    assert np.array_equal(ir.images[0, ..., 0], ir.images[0, ..., 2])
    assert num_classes("flir/ir", roots=roots) == 3


def test_llvip_maps_test_to_eval_and_shares_annotations(tmp_path):
    roots = {"llvip": str(write_llvip(tmp_path / "llvip"))}
    vis = get_split("llvip/rgb", "eval", 32, roots=roots)
    inf = get_split("llvip/ir", "eval", 32, roots=roots)
    assert len(vis) == len(inf) == 2
    for a, b in zip(vis.boxes, inf.boxes, strict=True):
        np.testing.assert_array_equal(a, b)
    assert vis.images.mean() < inf.images.mean()  # the infrared fixture is brighter


def test_coco_keeps_native_classes_and_flir_v2_maps_bike(tmp_path):
    coco = {"coco": str(write_coco(tmp_path / "coco"))}
    split = get_split("coco/rgb", "train", (W, H), roots=coco)
    assert split.class_names == ("person", "car", "dog")
    assert [lab.tolist() for lab in split.labels] == [[1, 2]] * 3
    np.testing.assert_allclose(split.boxes[0][1], [17, 3, 27, 15])
    v2 = {"flir_v2": str(write_flir_v2(tmp_path / "v2"))}
    ir = get_split("flir_v2/ir", "eval", (W, H), roots=v2)
    assert ir.labels[0].tolist() == [1, 3]  # person, bike → bicycle (label 3)


def test_classification_layouts(tmp_path):
    inet = {"imagenet": str(write_imagefolder(tmp_path / "inet"))}
    split = get_split("imagenet/rgb", "eval", 16, roots=inet)
    assert split.task == "classification" and split.targets.tolist() == [0, 0, 1, 1, 2, 2]
    assert num_classes("imagenet/rgb", roots=inet) == 3
    dn = {"domainnet": str(write_domainnet(tmp_path / "dn"))}
    test = get_split("domainnet/sketch", "eval", 16, roots=dn)
    assert test.class_names == ("aircraft_carrier", "zebra")
    assert test.targets.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize(
    ("writer", "fmt"),
    [
        (write_flir_aligned, "flir_aligned"),
        (write_llvip, "llvip"),
        (write_coco, "coco"),
        (write_flir_v2, "flir_v2"),
        (write_imagefolder, "imagefolder"),
        (write_domainnet, "domainnet"),
    ],
)
def test_detect_format_and_clean_check(tmp_path, writer, fmt):
    root = writer(tmp_path / fmt)
    assert detect_format(root) == fmt
    assert check_dataset(root).errors == []


def test_missing_thermal_pair_is_an_error_naming_the_file(tmp_path):
    root = write_flir_aligned(tmp_path / "flir")
    (root / "JPEGImages" / "FLIR_00002_PreviewData.jpeg").unlink()
    report = check_dataset(root)
    assert any(
        "FLIR_00002_RGB.jpg" in p.path and "without its thermal pair" in p.message
        for p in report.errors
    )
    with pytest.raises(CapstudyError, match="FLIR_00002"):
        get_split("flir/rgb", "train", 32, roots={"flir": str(root)})


def test_llvip_infrared_without_visible(tmp_path):
    root = write_llvip(tmp_path / "llvip")
    (root / "visible" / "train" / "010002.jpg").unlink()
    errors = check_dataset(root).errors
    assert any("010002" in p.path and "RGB pair" in p.message for p in errors)


def test_truncated_jpeg_is_reported_and_refused(tmp_path):
    root = write_llvip(tmp_path / "llvip")
    bad = root / "infrared" / "train" / "010001.jpg"
    truncate(bad)
    assert any(p.path == str(bad) and "truncated" in p.message for p in check_dataset(root).errors)
    with pytest.raises(CapstudyError, match="010001.jpg"):
        get_split("llvip/ir", "train", 32, roots={"llvip": str(root)})


def test_box_out_of_bounds_is_a_check_error_and_clipped_by_the_loader(tmp_path):
    root = write_llvip(tmp_path / "llvip")
    voc(root / "Annotations" / "010001.xml", [("person", 3, 5, 60, 20), ("person", 9, 9, 7, 12)])
    errors = check_dataset(root).errors
    assert any("out of bounds" in p.message and "010001.xml" in p.path for p in errors)
    assert any("degenerate" in p.message for p in errors)
    split = get_split("llvip/rgb", "train", (W, H), roots={"llvip": str(root)})
    np.testing.assert_allclose(split.boxes[0], [[2, 4, W, 20]])  # clipped; degenerate dropped
    assert any("out of bounds" in n for n in split.notes)


def test_unknown_coco_category_and_unmapped_voc_class(tmp_path):
    import json

    root = write_coco(tmp_path / "coco")
    ann = root / "annotations" / "instances_val2017.json"
    doc = json.loads(ann.read_text())
    doc["annotations"][0]["category_id"] = 99
    ann.write_text(json.dumps(doc))
    assert any("unknown category id 99" in p.message for p in check_dataset(root).errors)
    flir = write_flir_aligned(tmp_path / "flir")
    report = check_dataset(flir)
    assert not report.errors
    assert any("'dog'" in p.message for p in report.warnings)


def test_missing_split_list(tmp_path):
    root = write_flir_aligned(tmp_path / "flir")
    (root / "align_validation.txt").unlink()
    assert any("align_validation.txt" in p.message for p in check_dataset(root).errors)
    with pytest.raises(CapstudyError, match="align_validation"):
        get_split("flir/ir", "eval", 32, roots={"flir": str(root)})


def test_bad_names_and_missing_dataset(tmp_path):
    with pytest.raises(CapstudyError, match="dataset/modality"):
        get_split("flir", "train", 32)
    with pytest.raises(CapstudyError, match="modalities"):
        get_split("flir/depth", "train", 32)
    with pytest.raises(CapstudyError, match="not found"):
        get_split("flir/ir", "train", 32, roots={"flir": str(tmp_path / "none")})


def test_fingerprint_changes_with_labels_not_with_copy_time(tmp_path):
    root = write_llvip(tmp_path / "llvip")
    roots = {"llvip": str(root)}
    first = dataset_fingerprint("llvip/ir", "train", roots)
    assert dataset_fingerprint("llvip/ir", "train", roots) == first
    voc(root / "Annotations" / "010001.xml", [("person", 3, 5, 15, 20)])
    assert dataset_fingerprint("llvip/ir", "train", roots) != first
