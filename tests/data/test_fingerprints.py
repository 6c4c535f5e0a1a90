"""A split is listed once per node; changes to its files are noticed through the stamp."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from data_fixtures import jpeg, voc, write_imagefolder, write_llvip

from capstudy.data import dataset_fingerprint, get_split
from capstudy.data.fingerprints import cached_source_fingerprint, listings, record_path
from capstudy.data.readers import list_sources, source_fingerprint_of


def age(root: Path, seconds: float = 60) -> None:
    """Set every file's and folder's times into the past, as for data copied long ago."""
    then = time.time() - seconds
    for path in [root, *root.rglob("*")]:
        os.utime(path, (then, then))


def _llvip(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = write_llvip(tmp_path / "llvip", n_train=4, n_val=2)
    age(root)
    return root, {"llvip": str(root)}


def test_listed_once_then_read_from_the_record(tmp_path):
    root, roots = _llvip(tmp_path)
    first = dataset_fingerprint("llvip/ir", "train", roots)
    assert first == source_fingerprint_of(list_sources("llvip", root, "train", "ir"))
    for _ in range(3):
        assert dataset_fingerprint("llvip/ir", "train", roots) == first
        get_split("llvip/ir", "train", 32, roots=roots)  # the cache key reads the same record
    assert listings("llvip", root, "train", "ir") == 1
    # Another split or modality is its own record.
    dataset_fingerprint("llvip/rgb", "train", roots)
    assert listings("llvip", root, "train", "rgb") == 1
    assert listings("llvip", root, "train", "ir") == 1


def test_added_removed_renamed_and_relabelled_files_are_noticed(tmp_path):
    root, roots = _llvip(tmp_path)
    seen = {dataset_fingerprint("llvip/ir", "train", roots)}

    def changed() -> str:
        fp = dataset_fingerprint("llvip/ir", "train", roots)
        assert fp not in seen, "the change was not noticed"
        seen.add(fp)
        age(root)  # so the next change is judged against an old, trusted stamp
        assert dataset_fingerprint("llvip/ir", "train", roots) == fp
        return fp

    jpeg(root / "infrared" / "train" / "010009.jpg", 230)  # added image
    voc(root / "Annotations" / "010009.xml", [("person", 3, 5, 14, 20)])
    changed()
    (root / "infrared" / "train" / "010004.jpg").unlink()  # removed image
    changed()
    (root / "Annotations" / "010001.xml").rename(root / "Annotations" / "010007.xml")
    changed()
    # A label edited in place, same size: its own time (and bytes) change.
    ann = root / "Annotations" / "010002.xml"
    ann.write_text(ann.read_text().replace("<xmin>3</xmin>", "<xmin>4</xmin>"))
    changed()
    # Each change: one listing right after it (racy, not trusted) and one once it is old.
    assert listings("llvip", root, "train", "ir") == 1 + 2 * 4


def test_nested_class_folders_are_stamped(tmp_path):
    root = write_imagefolder(tmp_path / "inet", classes=3, per_class=2)
    age(root)
    first = cached_source_fingerprint("imagefolder", root, "train", "rgb")
    cls = sorted(p for p in (root / "train").iterdir() if p.is_dir())[1]
    jpeg(cls / "extra.JPEG", 99)  # only this class folder's time changes
    assert cached_source_fingerprint("imagefolder", root, "train", "rgb") != first


def test_fresh_data_is_not_trusted_and_bad_records_are_replaced(tmp_path):
    root = write_llvip(tmp_path / "llvip")  # just written: within the clock tick
    fp = cached_source_fingerprint("llvip", root, "train", "ir")
    assert cached_source_fingerprint("llvip", root, "train", "ir") == fp
    assert listings("llvip", root, "train", "ir") == 2  # not trusted: listed again
    age(root)
    assert cached_source_fingerprint("llvip", root, "train", "ir") == fp
    assert cached_source_fingerprint("llvip", root, "train", "ir") == fp
    assert listings("llvip", root, "train", "ir") == 3
    record_path("llvip", root, "train", "ir").write_text("{not json")  # damaged: listed again
    assert cached_source_fingerprint("llvip", root, "train", "ir") == fp
    assert cached_source_fingerprint("llvip", root, "train", "ir") == fp
    assert listings("llvip", root, "train", "ir") == 1  # the count restarts with the record


def test_a_copy_elsewhere_has_its_own_record_and_the_same_fingerprint(tmp_path):
    root, _ = _llvip(tmp_path)
    fp = cached_source_fingerprint("llvip", root, "train", "ir")
    copy = Path(shutil.copytree(root, tmp_path / "copy"))
    age(copy)
    assert record_path("llvip", copy, "train", "ir") != record_path("llvip", root, "train", "ir")
    assert cached_source_fingerprint("llvip", copy, "train", "ir") == fp
