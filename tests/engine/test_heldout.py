"""The trial's splits: val/* on the carved subset, eval/* on published splits, fair classes."""

from __future__ import annotations

import pytest
from enginefixtures import make_tiny_config, small_data  # noqa: F401  (small_data: fixture)

from capstudy import keys
from capstudy.engine import run_trial
from capstudy.engine.datasets import open_trial_data


def test_val_subset_is_disjoint_from_train_and_every_eval_split():
    config = make_tiny_config(
        eval_domains=["synth_a/ir", "synth_b/rgb"], max_train_images=0, max_eval_images=0
    )
    data = open_trial_data(config)
    val, train = set(data.val.sample_ids()), set(data.train.sample_ids())
    assert len(val) == 4 and len(train) == 36  # 10% of synth_a's 40 training images
    assert not val & train
    for domain, split in data.evals.items():
        if domain.startswith("synth_a/"):  # same dataset: ids are comparable
            assert not val & set(split.sample_ids()), domain
            assert split.split == "eval"
    # Every trial of a study holds out the same images, whatever its seed or init.
    other = open_trial_data(config.replace(seed=3, init="random", eval_domains=[]))
    assert set(other.val.sample_ids()) == val


def test_person_only_trained_trial_scores_shift_on_person_only():
    # synth_b mirrors LLVIP: persons only. Its model's synth_a (FLIR-like) metrics must not
    # average in cars and bicycles it never saw labelled.
    config = make_tiny_config(train_domain="synth_b/rgb", eval_domains=["synth_a/ir"], epochs=1)
    data = open_trial_data(config)
    assert data.class_sets == {"synth_b/rgb": ("person",), "synth_a/ir": ("person",)}
    metrics = run_trial(config).metrics
    shift = {k for k in metrics if k.startswith("eval/synth_a/ir/")}
    assert shift == {f"eval/synth_a/ir/{m}" for m in ("map", "map50", "ap_person")}
    assert metrics["eval/synth_a/ir/map"] == pytest.approx(metrics["eval/synth_a/ir/ap_person"])
    assert keys.val_metric("map50") in metrics


def test_three_class_train_keeps_all_classes_in_domain():
    config = make_tiny_config(eval_domains=["synth_b/ir"])
    data = open_trial_data(config)
    assert data.class_sets["synth_a/rgb"] == ("person", "car", "bicycle")
    assert data.class_sets["synth_b/ir"] == ("person",)


def test_dataset_classes_override_and_its_errors():
    from capstudy.errors import CapstudyError

    config = make_tiny_config(eval_domains=["synth_b/ir"], dataset_classes={"synth_a": "car"})
    data = open_trial_data(config)
    assert data.class_sets == {"synth_a/rgb": ("car",), "synth_b/ir": ()}
    with pytest.raises(CapstudyError, match="dataset_classes: synth_a: 'persn'"):
        open_trial_data(config.replace(dataset_classes={"synth_a": "persn"}))
    with pytest.raises(CapstudyError, match="unknown dataset"):
        open_trial_data(config.replace(dataset_classes={"flirr": "person"}))


def test_class_set_tags_name_every_domain():
    from capstudy.tracking import class_set_tags

    config = make_tiny_config(train_domain="synth_b/rgb", eval_domains=["synth_a/ir"])
    assert class_set_tags(config) == {
        keys.class_set_tag("synth_b/rgb"): "person",
        keys.class_set_tag("synth_a/ir"): "person",
    }
    assert class_set_tags(config.replace(dataset_classes={"synth_b": "dog"})) == {}
