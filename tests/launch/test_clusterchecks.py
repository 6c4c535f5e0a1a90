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
        datasets = {"flir": str(tmp_path / "no_flir_here")}
        checks = cluster_checks(tmp_path / "storage", "sqlite:///x.db", 1, 0, datasets)
    finally:
        ray.shutdown()
    storage = [c for c in checks if c.setting == "--storage"]
    assert [c.level for c in storage] == [OK] and "readable on all 1 nodes" in storage[0].message
    assert not list((tmp_path / "storage").iterdir())  # the probe file was removed
    (missing,) = [c for c in checks if c.setting == "datasets"]
    assert missing.level == ERROR and f"flir ({tmp_path / 'no_flir_here'})" in missing.message


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
