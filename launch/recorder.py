"""Driver-side MLflow recording of a study: a parent run and one child run per trial.

A Ray Tune callback in the driver writes everything (params, tags, per-epoch metrics, the
final model, the run status), so a single process talks to the tracking store (SQLite copes
badly with many concurrent writers) and trials need no tracking credentials.

Runs are keyed by the trial key (``<cell_hash>-s<k>``, tag ``capstudy.trial_id``) under the
parent run: a trial retried from its checkpoint, or resumed by ``capstudy launch --resume``,
finds its run again and continues it instead of creating a duplicate. Statuses: FINISHED
when a trial completes (ASHA-stopped trials too, tagged ``capstudy.early_stopped``),
FAILED when it errors for good, KILLED for trials still running when the driver stops.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune import Callback

from capstudy import keys, tracking
from capstudy.launch import trialfacts
from capstudy.launch.searcher import CELL_ID_KEY, TRIAL_KEY
from capstudy.launch.trainable import DATA_FINGERPRINT, VAL_FINGERPRINT, trial_config

log = logging.getLogger(__name__)
_METRIC_PREFIXES = ("val/", "eval/", "train/", "capacity/", "perf/")


def trial_run_filter(trial_key: str, parent_run_id: str) -> str:
    """MLflow filter for the child run of one trial."""
    return (
        f"tags.`{keys.T_TRIAL_ID}` = '{trial_key}' "
        f"and tags.`{keys.T_PARENT_RUN}` = '{parent_run_id}'"
    )


class StudyRecorder(Callback):
    """Records a study's trials as MLflow child runs of ``parent_run_id``."""

    def __init__(self, study: str, tracking_uri: str, parent_run_id: str, metric: str) -> None:
        self.study = study
        self.metric = metric  # the selection metric, recorded on every trial for the analysis
        self.uri = tracking_uri
        self.parent = parent_run_id
        self._runs: dict[str, str] = {}  # Ray trial id -> MLflow run id
        self._fingerprinted: set[str] = set()
        self._last_epoch: dict[str, int] = {}

    def run_id(self, trial: Any) -> str:
        """The trial's MLflow run, found by trial key or created (params + tags)."""
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        key = trial.config[TRIAL_KEY]
        found = tracking.find_runs(self.study, trial_run_filter(key, self.parent), self.uri)
        if found:
            run_id = found[0].info.run_id
            if found[0].info.status != "RUNNING":
                tracking.reopen_run(run_id, self.uri)
        else:
            from capstudy.engine import variant_of

            config = trial_config(trial.config)
            variant = variant_of(config)
            tags = tracking.trial_tags(
                config,
                study=self.study,
                cell=trial.config[CELL_ID_KEY],
                trial_id=key,
                parent_run_id=self.parent,
            )
            # The comparison (every grid dim but init) and the variant (also without seed),
            # so the analysis pairs trials on the study's own grid (issue 9).
            pair_key, variant_key = keys.comparison_keys(trial.config[CELL_ID_KEY])
            tags.update({keys.T_PAIR_KEY: pair_key, keys.T_VARIANT_KEY: variant_key})
            run_id = tracking.create_run(self.study, f"{variant.label} {key}", tags, self.uri)
            params = tracking.trial_params(config, variant.label)
            params[keys.P_STUDY_METRIC] = self.metric
            tracking.log_params(run_id, params, self.uri)
        self._runs[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run_id(trial)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.run_id(trial)  # retried from its checkpoint: the same run continues

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.run_id(trial)
        metrics = {k: v for k, v in result.items() if k.startswith(_METRIC_PREFIXES)}
        metrics.update(trialfacts.cost_metrics(trial, result))
        epoch = int(result.get(keys.M_EPOCH, result.get("training_iteration", 0)))
        self._last_epoch[trial.trial_id] = epoch
        tracking.log_metrics(run_id, metrics, epoch, self.uri)
        if trial.trial_id not in self._fingerprinted:
            tags = trialfacts.lineage_tags(result)  # which registered weights it loaded
            if DATA_FINGERPRINT in result:
                tags[keys.T_DATA_FINGERPRINT] = result[DATA_FINGERPRINT]
            if VAL_FINGERPRINT in result:
                tags[keys.T_VAL_FINGERPRINT] = result[VAL_FINGERPRINT]
            if tags:
                tracking.set_tags(run_id, tags, self.uri)
                self._fingerprinted.add(trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        run_id = self.run_id(trial)
        epochs = int(trial.config.get("epochs", 0))
        stopped_early = 0 < self._last_epoch.get(trial.trial_id, epochs) < epochs
        tracking.set_tags(run_id, {keys.T_EARLY_STOPPED: str(stopped_early).lower()}, self.uri)
        try:
            self._log_model(trial, run_id)
        except Exception:  # a model upload failure must not lose the run
            log.exception("could not log the model of trial %s", trial.config[TRIAL_KEY])
        tracking.end_run(run_id, "FINISHED", self.uri)
        self._runs.pop(trial.trial_id, None)

    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self.run_id(trial)
        tags = trialfacts.error_tags(trial)  # `capstudy status` groups failures by this line
        if tags:
            tracking.set_tags(run_id, tags, self.uri)
        tracking.end_run(run_id, "FAILED", self.uri)
        self._runs.pop(trial.trial_id, None)

    def close(self, status: str = "KILLED") -> None:
        """End every run still open (the driver stopped before its trial finished)."""
        for run_id in list(self._runs.values()):
            tracking.end_run(run_id, status, self.uri)
        self._runs.clear()

    def _log_model(self, trial: Any, run_id: str) -> None:
        """The final model (the trial's last checkpoint) as an MLflow PyTorch model."""
        checkpoint = trial.checkpoint
        if checkpoint is None:
            return
        import mlflow

        from capstudy.launch.models import model_from_checkpoint_dir

        with checkpoint.as_directory() as folder:
            model = model_from_checkpoint_dir(trial_config(trial.config), folder)
        mlflow.set_tracking_uri(self.uri)
        with mlflow.start_run(run_id=run_id):
            tracking.log_torch_model(model)
