"""Cluster settings checked before a launch: tracking URI, node resources, shared storage."""

from __future__ import annotations

import ray

from capstudy.launch.clusterchecks import (
    ERROR,
    OK,
    WARN,
    cluster_checks,
    is_local_uri,
    resource_checks,
    tracking_checks,
)


def test_local_tracking_uris_are_refused_with_an_address():
    for uri in ("sqlite:///x.db", "file:///tmp/mlruns", "/tmp/mlruns"):
        assert is_local_uri(uri)
        (check,) = tracking_checks(uri, "auto")
        assert check.level == ERROR and "mlflow server" in check.message
    (check,) = tracking_checks("sqlite:///x.db", None)  # one machine: fine
    assert check.level == OK


def test_an_unreachable_tracking_server_is_an_error():
    (check,) = tracking_checks("http://127.0.0.1:9", "auto")  # port 9: nothing listens
    assert (
        check.level == ERROR and "no MLflow server answers at http://127.0.0.1:9" in check.message
    )


def test_a_password_in_the_tracking_uri_is_refused_and_not_repeated():
    (check,) = tracking_checks("http://me:hunter2-hunter2@127.0.0.1:9", None)
    assert check.level == ERROR and "hunter2" not in check.message
    assert "http://me:***@127.0.0.1:9" in check.message
    assert "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD" in check.message


def test_gpu_trials_need_gpus_and_a_trial_must_fit_a_node():
    cpu_only = [{"node": "a", "CPU": 64, "GPU": 0}]
    (check,) = resource_checks(cpu_only, cpu=4, gpu=0.25)
    assert check.level == ERROR and check.setting == "resources.gpu"
    small = [{"node": "a", "CPU": 2, "GPU": 1}]
    (check,) = resource_checks(small, cpu=4, gpu=0.25)
    assert check.level == ERROR and "no node fits one trial" in check.message


def test_cpus_that_run_out_before_the_gpu_warn_with_the_number_to_use():
    # full_grid's cpu: 4, gpu: 0.25 needs 16 CPUs per GPU; 8 CPUs fill half the GPU.
    nodes = [{"node": "gpu-1", "CPU": 8, "GPU": 1}, {"node": "gpu-2", "CPU": 32, "GPU": 2}]
    checks = resource_checks(nodes, cpu=4, gpu=0.25)
    assert checks[0].level == OK
    (warn,) = [c for c in checks if c.level == WARN]
    assert "node gpu-1: 8 CPUs run 2 trials" in warn.message
    assert "room for 4 (16 CPUs per GPU needed); set resources.cpu to 2 or less" in warn.message


def test_storage_is_probed_from_every_node(tmp_path):
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        needs = [("flir/rgb", "train"), ("flir/rgb", "eval")]
        roots = {"flir": str(tmp_path / "no_flir_here")}
        checks, fingerprints = cluster_checks(
            tmp_path / "storage", "sqlite:///x.db", 1, 0, needs, roots
        )
    finally:
        ray.shutdown()
    storage = [c for c in checks if c.setting == "--storage"]
    assert [c.level for c in storage] == [OK] and "readable on all 1 nodes" in storage[0].message
    assert not list((tmp_path / "storage").iterdir())  # the probe file was removed
    (missing,) = [c for c in checks if c.setting == "datasets"]
    assert missing.level == ERROR and f"flir ({tmp_path / 'no_flir_here'})" in missing.message
    assert fingerprints == {}


def test_data_needs_cover_trials_evaluation_and_pretraining():
    from capstudy.launch.dataprobe import data_needs
    from capstudy.study import load

    needs = data_needs(load("full_grid"))
    assert ("flir/rgb", "train") in needs and ("llvip/rgb", "train") in needs
    assert {("flir/ir", "eval"), ("llvip/ir", "eval"), ("flir/rgb", "eval")} <= set(needs)
    assert ("imagenet/rgb", "train") in needs and ("coco/rgb", "train") in needs
    assert ("imagenet/rgb", "eval") in needs  # a pretraining stage reports on it
    assert ("flir/ir", "train") not in needs  # evaluated only: its training split is not read


def test_copies_that_differ_between_nodes_are_an_error_naming_both():
    from capstudy.launch.dataprobe import data_checks

    def answer(node, fp):
        return {
            "node": node,
            "data": {"missing": [], "unreadable": [], "fingerprints": {"flir/rgb:train": fp}},
        }

    names = {"n1": "gpu-1", "n2": "gpu-2", "n3": "gpu-3"}
    checks, agreed = data_checks([answer("n1", "aa"), answer("n2", "aa")], names)
    assert [c.level for c in checks] == [OK] and agreed == {"flir/rgb:train": "aa"}
    answers = [answer("n1", "aa"), answer("n2", "bb"), answer("n3", "aa")]
    checks, agreed = data_checks(answers, names)
    (check,) = checks
    assert check.level == ERROR and check.setting == "datasets"
    assert "flir/rgb:train: aa on gpu-1, gpu-3, bb on gpu-2" in check.message
    assert agreed == {}


def test_a_node_probe_fingerprints_each_split_once(tmp_path, monkeypatch):
    import os
    import time

    from capstudy.data.api import ensure_dataset
    from capstudy.data.fingerprints import listings
    from capstudy.launch.dataprobe import probe_data

    monkeypatch.setenv("CAPSTUDY_SYNTH_SCALE", "0.05")
    root = ensure_dataset("synth_a")
    then = time.time() - 60  # data copied long ago (fresh files are not trusted, see module)
    for path in [root, *root.rglob("*")]:
        os.utime(path, (then, then))
    needs = [("synth_a/rgb", "train"), ("synth_a/ir", "eval"), ("flir/rgb", "eval")]
    first = probe_data(needs, {"flir": str(tmp_path / "none")})
    assert first["missing"] == [f"flir ({tmp_path / 'none'})"] and not first["unreadable"]
    assert set(first["fingerprints"]) == {"synth_a/rgb:train", "synth_a/ir:eval"}
    assert probe_data(needs, {"flir": str(tmp_path / "none")}) == first
    assert listings("flir_aligned", root, "train", "rgb") == 1
    assert listings("flir_aligned", root, "eval", "ir") == 1


def test_pretrain_resources_must_fit_a_node_but_are_not_packed():
    nodes = [{"node": "gpu-1", "CPU": 8, "GPU": 1}]
    (check,) = resource_checks(nodes, cpu=4, gpu=1, key="pretrain.resources")
    assert check.level == OK and "1 of 1 nodes fit pretrain.resources" in check.message
    (check,) = resource_checks(nodes, cpu=4, gpu=2, key="pretrain.resources")
    assert check.level == ERROR and check.setting == "pretrain.resources"
    assert "no node fits one pretraining run" in check.message
    assert "lower pretrain.resources in the study file" in check.message
    (check,) = resource_checks([{"node": "a", "CPU": 64}], cpu=1, gpu=1, key="pretrain.resources")
    assert check.setting == "pretrain.resources.gpu" and "set pretrain.resources.gpu: 0" in (
        check.message
    )
