"""Reading trial runs from a real SQLite MLflow store into the tidy table."""

from __future__ import annotations

import pytest
from analysis_mlflow_helpers import log_trial, start_study
from mlflow.tracking import MlflowClient

from capstudy import keys
from capstudy.analysis import mlflow_io
from capstudy.analysis.results import load_from_mlflow
from capstudy.errors import CapstudyError

DOMAINS = ("synth_a/rgb", "synth_a/ir")


def _design(init: str, seed: int = 0, phi: int = -2) -> dict:
    return {
        keys.P_FAMILY: "efficientnet_b0",
        keys.P_PHI: phi,
        keys.P_LABEL: f"B{phi}",
        keys.P_INIT: init,
        keys.P_TRAIN_DOMAIN: "synth_a/rgb",
        keys.P_SEED: seed,
    }


def _evals(value: float) -> dict[str, float]:
    return {keys.eval_metric(d, "map50"): value - 0.1 * i for i, d in enumerate(DOMAINS)}


def test_reader_keeps_finished_trials_with_final_values(tracking_uri):
    client = MlflowClient(tracking_uri)
    exp_id, parent = start_study(client, "demo")
    kw = {"study": "demo"}
    log_trial(
        client,
        exp_id,
        parent,
        design=_design("random"),
        val=[0.1, 0.5, 0.3],
        evals=_evals(0.4),
        hpo={"lr": 0.01},
        trial_id="a",
        **kw,
    )
    log_trial(
        client,
        exp_id,
        parent,
        design=_design("imagenet"),
        val=[0.2, 0.6],
        evals=_evals(0.5),
        hpo={"lr": 0.001},
        trial_id="b",
        **kw,
    )
    log_trial(
        client,
        exp_id,
        parent,
        design=_design("imagenet", 1),
        val=[0.9],
        evals=_evals(0.9),
        status="RUNNING",
        trial_id="c",
        **kw,
    )
    log_trial(
        client,
        exp_id,
        parent,
        design=_design("imagenet", 2),
        val=[0.9],
        evals=_evals(0.9),
        status="FAILED",
        trial_id="d",
        **kw,
    )
    # Runs of other kinds in the same experiment are not trials.
    client.create_run(exp_id, tags={keys.T_KIND: keys.KIND_ANALYSIS})

    loaded = load_from_mlflow(tracking_uri, "demo")

    table = loaded.table
    assert sorted(table["trial_id"].unique()) == ["a", "b"]
    assert dict(loaded.skipped) == {"status RUNNING": 1, "status FAILED": 1}
    assert len(table) == 4  # 2 trials x 2 evaluation domains
    assert set(table["eval_domain"]) == set(DOMAINS)  # domains keep their slash
    row = table[(table["trial_id"] == "a") & (table["eval_domain"] == "synth_a/ir")].iloc[0]
    assert row["selection_value"] == pytest.approx(0.3)  # the last step, not the best
    assert row["map50"] == pytest.approx(0.3)
    assert row["hpo_lr"] == pytest.approx(0.01)
    assert row["phi"] == -2 and row["seed"] == 0
    assert row["backbone_params"] == pytest.approx(1e5)
    assert row["selection_metric"] == "val/map50"
    assert list(table.columns[: len(keys.TIDY_COLUMNS)]) == list(keys.TIDY_COLUMNS)


def test_latest_study_and_unknown_study(tracking_uri):
    client = MlflowClient(tracking_uri)
    for name in ("older", "newer"):
        exp_id, parent = start_study(client, name)
        log_trial(
            client,
            exp_id,
            parent,
            study=name,
            design=_design("random"),
            val=[0.5],
            evals=_evals(0.5),
        )
    assert mlflow_io.latest_study(tracking_uri) == "newer"
    assert load_from_mlflow(tracking_uri).study == "newer"
    with pytest.raises(CapstudyError, match="no study named 'nope'.*capstudy status"):
        load_from_mlflow(tracking_uri, "nope")


def test_study_without_finished_trials_is_an_error(tracking_uri):
    client = MlflowClient(tracking_uri)
    exp_id, parent = start_study(client, "empty")
    log_trial(
        client,
        exp_id,
        parent,
        study="empty",
        design=_design("random"),
        val=[0.5],
        evals=_evals(0.5),
        status="FAILED",
    )
    with pytest.raises(CapstudyError, match="1 status FAILED"):
        load_from_mlflow(tracking_uri, "empty")


def test_reader_takes_comparison_keys_grid_params_and_class_sets_from_the_run(tracking_uri):
    client = MlflowClient(tracking_uri)
    exp_id, parent = start_study(client, "keys")
    design = {**_design("imagenet"), keys.P_WIDTH_MULT: 0.32, keys.P_IMAGE_SIZE: 224}
    rid = log_trial(
        client, exp_id, parent, study="keys", design=design, val=[0.5], evals=_evals(0.5)
    )
    cell = "efficientnet_b0|width=0.32|image_size=224|init=imagenet|seed=0"
    pair_key, variant_key = keys.comparison_keys(cell)
    assert pair_key == "efficientnet_b0|width=0.32|image_size=224|seed=0"
    assert variant_key == "efficientnet_b0|width=0.32|image_size=224"
    client.set_tag(rid, keys.T_PAIR_KEY, pair_key)
    client.set_tag(rid, keys.T_VARIANT_KEY, variant_key)
    client.set_tag(rid, f"{keys.T_CLASS_SET_PREFIX}.synth_a/ir", "person")

    table = load_from_mlflow(tracking_uri, "keys").table.set_index("eval_domain")

    assert set(table["pair_key"]) == {pair_key} and set(table["variant_key"]) == {variant_key}
    assert table.loc["synth_a/ir", "class_set"] == "person"
    assert table.loc["synth_a/rgb", "class_set"] == ""  # not recorded: shown as nothing
    assert table.loc["synth_a/ir", "width_mult"] == 0.32
    assert table.loc["synth_a/ir", "image_size"] == 224
    assert set(table["parent_run_id"]) == {parent}
