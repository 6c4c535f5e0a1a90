"""Split sizes counted from a listing (the dry run's cost) equal what the readers index."""

from __future__ import annotations

import time

import pytest
from data_fixtures import (
    write_coco,
    write_domainnet,
    write_flir_aligned,
    write_flir_v2,
    write_imagefolder,
    write_llvip,
)

from capstudy.data.counts import LAYOUT_PAGE, count_domains, count_split, notes, source_line
from capstudy.data.domains import DATASETS, parse_domain
from capstudy.data.readers import read_raw

LAYOUTS = [
    ("flir", lambda r: write_flir_aligned(r, n_train=4, n_val=2), ("flir/rgb", "flir/ir")),
    ("llvip", lambda r: write_llvip(r, n_train=3, n_val=5), ("llvip/rgb", "llvip/ir")),
    ("coco", lambda r: write_coco(r, n_train=3, n_val=1), ("coco/rgb",)),
    ("flir_v2", lambda r: write_flir_v2(r, n=3), ("flir_v2/rgb", "flir_v2/ir")),
    ("imagenet", lambda r: write_imagefolder(r, classes=2, per_class=3), ("imagenet/rgb",)),
    ("domainnet", write_domainnet, ("domainnet/sketch",)),
]


@pytest.mark.parametrize(("dataset", "write", "domains"), LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_counted_sizes_equal_the_readers_samples(tmp_path, dataset, write, domains):
    root = write(tmp_path / dataset)
    roots = {dataset: str(root)}
    for domain in domains:
        for split in ("train", "eval"):
            fmt = DATASETS[dataset].format
            indexed = read_raw(fmt, root, split, parse_domain(domain)[1])
            assert indexed.samples and not indexed.problems
            assert count_split(domain, split, roots) == len(indexed.samples), (domain, split)


def test_local_data_is_counted_and_missing_data_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSTUDY_DATA", str(tmp_path))
    write_flir_aligned(tmp_path / "flir", n_train=7, n_val=3)
    (tmp_path / "llvip" / "visible" / "train").mkdir(parents=True)  # no infrared, no test
    found = count_domains(["flir/rgb", "flir/ir", "llvip/ir", "coco/rgb", "synth_b/rgb"])
    assert found.images == {"flir/ir": (7, 3), "flir/rgb": (7, 3)}
    assert found.published == ["coco/rgb", "llvip/ir", "synth_b/rgb"]
    assert found.missing == {"coco": tmp_path / "coco"}  # synthetic data is made on demand
    assert found.unlisted == {"llvip": tmp_path / "llvip"}
    line = source_line(found)
    assert "counted in the local data for flir/ir 7/3, flir/rgb 7/3" in line
    assert "published sizes for coco/rgb, llvip/ir, synth_b/rgb" in line
    coco, llvip = notes(found)
    assert f"'coco' not found at {tmp_path / 'coco'}" in coco and LAYOUT_PAGE in coco
    assert f"'llvip' at {tmp_path / 'llvip'}" in llvip and LAYOUT_PAGE in llvip


def test_missing_data_costs_no_listing(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSTUDY_DATA", str(tmp_path / "nothing"))
    tic = time.perf_counter()
    found = count_domains(["flir/rgb", "flir/ir", "llvip/rgb", "llvip/ir", "flir_v2/ir"])
    assert time.perf_counter() - tic < 1.0
    assert not found.images and set(found.missing) == {"flir", "llvip", "flir_v2"}


STUDY = """
study: {name: counted, task: detection}
fixed: {epochs: 2, image_size: 128}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-7]}
  train: {grid_search: [flir/rgb]}
evaluate: [flir/ir, llvip/ir]
resources: {cpu: 1, gpu: 0}
"""


def test_dry_run_cost_uses_local_counts_and_says_which(tmp_path, monkeypatch):
    from capstudy import cost
    from capstudy.study import load_study
    from capstudy.study.plan import plan

    (tmp_path / "counted.yaml").write_text(STUDY)
    monkeypatch.setenv("CAPSTUDY_DATA", str(tmp_path / "data"))
    p = plan(load_study(str(tmp_path / "counted.yaml")))
    published = cost.estimate(p).volume
    assert published.train == 2 * (4129 - 413)  # FLIR's published 4,129, val_fraction 0.1
    write_flir_aligned(tmp_path / "data" / "flir", n_train=30, n_val=10)
    out = cost.cost_lines(p, 1, {})
    local = cost.estimate(p, None, count_domains(cost.study_domains(p)).images).volume
    # 30 listed: 3 held out as val, 27 trained, for 2 epochs; the evaluation splits of
    # flir/rgb and flir/ir (10 each) and llvip/ir (published: 3,463) after both epochs.
    assert local.train == 2 * 27 and local.val == 2 * 3
    assert local.shift == 2 * (10 + 10 + 3463)
    assert f"trained {local.train:.0f};" in out
    assert "split sizes: counted in the local data for flir/ir 30/10, flir/rgb 30/10" in out
    assert "published sizes for llvip/ir" in out
    assert f"note: dataset 'llvip' not found at {tmp_path / 'data' / 'llvip'}" in out
    assert LAYOUT_PAGE in out and "'flir' not found" not in out
