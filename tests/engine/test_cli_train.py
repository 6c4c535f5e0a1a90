"""`capstudy train` end to end on a tiny config, and its MLflow run read back."""

from __future__ import annotations

from clitools import run_cli
from enginefixtures import small_data  # noqa: F401  (fixtures)
from mlflow.tracking import MlflowClient

from capstudy import keys, paths
from capstudy.cli.train import TRAIN_EXPERIMENT


def test_train_logs_an_mlflow_run(tmp_path):
    config = tmp_path / "trial.yaml"
    config.write_text(
        "family: mobilenetv3_small\nphi: -6\nimage_size: 64\nbatch_size: 8\nepochs: 1\n"
        "max_train_images: 16\nmax_eval_images: 8\nthreads: 1\n"
    )
    assert run_cli(["train", "--config", str(config), "--set", "seed=3"]) == 0
    client = MlflowClient(paths.default_tracking_uri())
    exp = client.get_experiment_by_name(TRAIN_EXPERIMENT)
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params[keys.P_SEED] == "3"
    assert run.data.tags[keys.T_KIND] == keys.KIND_TRIAL
    assert keys.val_metric("map50") in run.data.metrics
    assert keys.M_IMAGES_PER_S in run.data.metrics


def test_bad_override_and_missing_weights_are_clean_errors(tmp_path, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text("family: efficientnet_b0\nphi: -7\n")
    assert run_cli(["train", "--config", str(config), "--set", "lr"]) == 2
    assert run_cli(["train", "--config", str(config), "--init", "imagenet", "--no-mlflow"]) == 2
    assert "capstudy pretrain imagenet --family efficientnet_b0 --phi -7" in capsys.readouterr().err
