"""Driver-side MLflow recording of a study: a parent run and one child run per trial.

The Ray Tune callbacks here only *queue* writes on a :class:`~.sink.TrackingSink`; its own
thread talks to the store, with retries while the store is unreachable, so a trial never waits
on MLflow (Ray 2.60's ``tune.report`` waits for every callback). One process writes to the
store (SQLite copes badly with many writers) and trials need no tracking credentials.

Runs are keyed by the trial key (``<cell_hash>-s<k>``, tag ``capstudy.trial_id``) under the
parent run: a trial retried from its checkpoint, or resumed by ``capstudy launch --resume``,
finds its run again and continues it instead of creating a duplicate. Statuses: FINISHED
when a trial completes (ASHA-stopped trials too, tagged ``capstudy.early_stopped``),
FAILED when it errors for good, KILLED for trials still running when the driver stops.

Resume: ``Tuner.restore`` unpickles the callbacks of the first launch. A pickled recorder
holds nothing: it unpickles as the recorder the *current* driver attached
(:meth:`StudyRecorder.attach`), so a new ``--tracking-uri`` and the driver's own
``close`` apply after any number of resumes. A driver killed with SIGKILL loses the writes
still queued; :meth:`StudyRecorder.reconcile` writes them again from Ray's own per-trial
result log (idempotently: same timestamps, MLflow skips equal rows) and settles every run's
status from Ray's trial states, so no run stays RUNNING.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from capstudy import keys, tracking
from capstudy.errors import CapstudyError
from capstudy.launch import trialfacts
from capstudy.launch.checkpoints import result_rows
from capstudy.launch.searcher import CELL_ID_KEY, RETRY_BATCH_KEY, TRIAL_KEY
from capstudy.launch.sink import MetricWrite, TrackingSink
from capstudy.launch.trainable import (
    CHECKPOINT_FILE,
    CHECKPOINT_NOTE,
    DATA_FINGERPRINT,
    VAL_FINGERPRINT,
    trial_config,
)

log = logging.getLogger(__name__)
_METRIC_PREFIXES = ("val/", "eval/", "train/", "capacity/", "perf/")
# Ray trial state -> the run status it ends with.
_FINAL_STATUS = {"TERMINATED": "FINISHED", "ERROR": "FAILED"}
_ACTIVE: StudyRecorder | None = None


def trial_run_filter(trial_key: str, parent_run_id: str) -> str:
    """MLflow filter for the child run of one trial."""
    return (
        f"tags.`{keys.T_TRIAL_ID}` = '{trial_key}' "
        f"and tags.`{keys.T_PARENT_RUN}` = '{parent_run_id}'"
    )


def _active_recorder() -> StudyRecorder:
    """What a pickled recorder unpickles as: the recorder the running driver attached."""
    if _ACTIVE is None:
        raise CapstudyError(
            "a study's recorder was restored with no driver recorder attached; resume studies "
            "with `capstudy launch --resume`, which attaches one"
        )
    return _ACTIVE


def _permanent(exc: Exception) -> bool:
    """The store answered and refused the write: retrying cannot help."""
    from mlflow.exceptions import MlflowException

    refused = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST"}
    return isinstance(exc, MlflowException) and exc.error_code in refused


def metric_rows(result: dict[str, Any]) -> tuple[int, int, dict[str, float]]:
    """(step, timestamp in ms, metrics) of one Ray result, as recorded in MLflow.

    The timestamp is the one Ray stamped on the result, not the time of the write, so writing
    a result twice (a retry, a replay after a killed driver) gives identical rows.
    """
    metrics = {
        k: float(v)
        for k, v in result.items()
        if k.startswith(_METRIC_PREFIXES) and isinstance(v, int | float) and not isinstance(v, bool)
    }
    step = int(result.get(keys.M_EPOCH, result.get("training_iteration", 0)))
    return step, int(float(result.get("timestamp", 0)) * 1000), metrics


class StudyRecorder(Callback):
    """Records a study's trials as MLflow child runs of ``parent_run_id``."""

    # Figures of the last recorder closed in this process (the full_grid-shape benchmark).
    last_stats: dict[str, Any] = {}

    def __init__(
        self,
        study: str,
        tracking_uri: str,
        parent_run_id: str,
        metric: str,
        mode: str = "max",
        **sink_kw: Any,
    ) -> None:
        self.study = study
        # The selection metric and its direction, recorded on every trial for the analysis.
        self.metric, self.mode = metric, mode
        self.uri = tracking_uri
        self.parent = parent_run_id
        self.sink = TrackingSink(self._write_metrics, permanent=_permanent, **sink_kw)
        self._runs: dict[str, str] = {}  # trial key -> MLflow run id (sink thread only)
        self._fingerprinted: set[str] = set()
        self._seen: set[str] = set()  # trials this driver has started or ended
        # Trials that had reported to an earlier, killed driver: writes it still had queued
        # were lost, and epochs before the trial's checkpoint are not reported again, so
        # :meth:`reconcile` writes their whole result log again (idempotent).
        self.continued: set[str] = set()
        self.warnings: list[str] = []  # damaged checkpoints trials skipped (printed at the end)
        self.results = 0  # results seen
        self.callback_s = 0.0  # time spent in on_trial_result: what tune.report waits on

    def __reduce__(self) -> tuple:
        # Ray pickles callbacks with the experiment; see the module docstring (resume).
        return (_active_recorder, ())

    def attach(self) -> StudyRecorder:
        """Make this the recorder that pickled recorders of this process unpickle as."""
        global _ACTIVE
        _ACTIVE = self
        return self

    # -- Ray callback hooks (driver thread: queue only) --------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        self._first_sight(trial)
        self.sink.call("open run", self._open, dict(trial.config))

    def on_trial_recover(self, iteration, trials, trial, **info):
        # Retried after a failure (its node lost, say): the same run continues, and counts
        # the retry by its cause (Ray appends each failure to the trial's error file).
        self.on_trial_start(iteration, trials, trial)
        cause = trialfacts.error_tags(trial).get(keys.T_ERROR, "(no error recorded)")
        self.sink.call("retry", self._count_retry, trial.config[TRIAL_KEY], cause)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        tic = time.perf_counter()
        key = trial.config[TRIAL_KEY]
        step, stamp, metrics = metric_rows(result)
        metrics.update(trialfacts.cost_metrics(trial, result))
        self.sink.submit(MetricWrite(key, metrics, step, stamp))
        if key not in self._fingerprinted:
            tags = trialfacts.lineage_tags(result)  # which registered weights it loaded
            if DATA_FINGERPRINT in result:
                tags[keys.T_DATA_FINGERPRINT] = str(result[DATA_FINGERPRINT])
            if VAL_FINGERPRINT in result:
                tags[keys.T_VAL_FINGERPRINT] = str(result[VAL_FINGERPRINT])
            if tags:
                self.sink.call("trial facts", self._set_tags, key, tags)
                self._fingerprinted.add(key)
        if result.get(CHECKPOINT_NOTE):
            self._checkpoint_note(key, str(result[CHECKPOINT_NOTE]))
        self.results += 1
        self.callback_s += time.perf_counter() - tic

    def _checkpoint_note(self, key: str, note: str) -> None:
        """A trial skipped a damaged checkpoint: warn now and at the end, tag its run."""
        self.warnings.append(f"trial {key}: {note}")
        log.warning("trial %s: %s", key, note)
        self.sink.call(
            "checkpoint note", self._set_tags, key, {keys.T_CHECKPOINT_DAMAGED: note[:4000]}
        )

    def on_trial_complete(self, iteration, trials, trial, **info):
        key = trial.config[TRIAL_KEY]
        self._first_sight(trial)  # a restored trial the scheduler ends before it starts
        self.sink.call(
            "early stop tag",
            self._set_tags,
            key,
            {keys.T_EARLY_STOPPED: str(self._stopped_early(trial)).lower()},
        )
        self.sink.call("model", self._log_model, key, dict(trial.config), trial.checkpoint)
        self.sink.call("end run", self._end, key, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        key = trial.config[TRIAL_KEY]
        self._first_sight(trial)
        tags = trialfacts.error_tags(trial)  # `capstudy status` groups failures by this line
        if tags:
            self.sink.call("error tag", self._set_tags, key, tags)
        self.sink.call("end run", self._end, key, "FAILED")

    def _first_sight(self, trial: Any) -> None:
        """Note a trial that reported to an earlier driver (see ``continued``)."""
        key = trial.config[TRIAL_KEY]
        if key not in self._seen:
            self._seen.add(key)
            if keys.M_EPOCH in (trial.run_metadata.last_result or {}):
                self.continued.add(key)

    def close(self, status: str = "KILLED", timeout: float | None = 600) -> bool:
        """Flush the queue, then end every run still open (its trial did not finish)."""
        self.sink.call("close runs", self._end_open, status)
        done = self.sink.close(timeout)
        StudyRecorder.last_stats = {
            "results": self.results,
            "callback_s": self.callback_s,
            "max_depth": self.sink.max_depth,
            "retries": self.sink.retries,
            "dropped": self.sink.dropped,
        }
        if not done:
            log.error(
                "%d tracking writes were not done when the driver stopped", self.sink.pending()
            )
        return done

    # -- writes (sink thread) ----------------------------------------------------------
    def _client(self) -> Any:
        return tracking.client(self.uri)

    def _open(self, config: dict[str, Any]) -> str:
        """The trial's run, found by trial key or created (params + tags); RUNNING."""
        key = config[TRIAL_KEY]
        found = tracking.find_runs(self.study, trial_run_filter(key, self.parent), self.uri)
        if found:
            run_id = found[0].info.run_id
            if found[0].info.status != "RUNNING":
                tracking.reopen_run(run_id, self.uri)
            if config.get(RETRY_BATCH_KEY):  # rerun with a smaller batch than its param says
                tracking.set_tags(
                    run_id, {keys.T_RETRY_BATCH_SIZE: str(config[RETRY_BATCH_KEY])}, self.uri
                )
        else:
            from capstudy.engine import variant_of

            trial_cfg = trial_config(config)
            variant = variant_of(trial_cfg)
            tags = tracking.trial_tags(
                trial_cfg,
                study=self.study,
                cell=config[CELL_ID_KEY],
                trial_id=key,
                parent_run_id=self.parent,
            )
            # The comparison (every grid dim but init) and the variant (also without seed),
            # so the analysis pairs trials on the study's own grid.
            pair_key, variant_key = keys.comparison_keys(config[CELL_ID_KEY])
            tags.update({keys.T_PAIR_KEY: pair_key, keys.T_VARIANT_KEY: variant_key})
            run_id = tracking.create_run(self.study, f"{variant.label} {key}", tags, self.uri)
            params = tracking.trial_params(trial_cfg, variant.label)
            params[keys.P_STUDY_METRIC] = self.metric
            params[keys.P_STUDY_MODE] = self.mode
            tracking.log_params(run_id, params, self.uri)
        self._runs[key] = run_id
        return run_id

    def _run_of(self, key: str) -> str:
        if key not in self._runs:
            found = tracking.find_runs(self.study, trial_run_filter(key, self.parent), self.uri)
            if not found:
                raise CapstudyError(f"no MLflow run for trial {key} (its open write failed)")
            self._runs[key] = found[0].info.run_id
        return self._runs[key]

    def _write_metrics(self, key: str, rows: list[tuple[str, float, int, int]]) -> None:
        tracking.log_metric_rows(self._run_of(key), rows, self.uri)

    def _set_tags(self, key: str, tags: dict[str, str]) -> None:
        tracking.set_tags(self._run_of(key), tags, self.uri)

    def _count_retry(self, key: str, cause: str) -> None:
        """Add one retry of ``cause`` to the run's retry counts (kept across drivers)."""
        run_id = self._run_of(key)
        tags = self._client().get_run(run_id).data.tags
        counts = json.loads(tags.get(keys.T_RETRIES) or "{}")
        counts[cause] = counts.get(cause, 0) + 1
        tracking.set_tags(run_id, {keys.T_RETRIES: json.dumps(counts)}, self.uri)

    def _end(self, key: str, status: str) -> None:
        tracking.end_run(self._run_of(key), status, self.uri)
        self._runs.pop(key, None)

    def _end_open(self, status: str) -> None:
        for key in list(self._runs):
            self._end(key, status)

    def _log_model(self, key: str, config: dict[str, Any], checkpoint: Any) -> None:
        """The final model (the trial's last checkpoint) as an MLflow PyTorch model."""
        if checkpoint is None:
            return
        try:
            import mlflow

            from capstudy.launch.models import model_from_checkpoint_dir

            with checkpoint.as_directory() as folder:
                if not (Path(folder) / CHECKPOINT_FILE).is_file():
                    return  # a scripted trial's checkpoint holds no model
                model = model_from_checkpoint_dir(trial_config(config), folder)
        except Exception:  # a model that cannot be rebuilt must not lose the run
            log.exception("could not rebuild the model of trial %s", key)
            return
        mlflow.set_tracking_uri(self.uri)
        with mlflow.start_run(run_id=self._run_of(key)):
            tracking.log_torch_model(model)

    # -- after fit: settle what a killed driver left behind ------------------------------
    def reconcile(self, trials: list[Any]) -> dict[str, int]:
        """Make every trial's run match Ray's record of it; returns counts of what was fixed.

        A run that is missing, or not FINISHED/FAILED although Ray ended its trial, lost
        queued writes to a killed driver: its results are written again from Ray's result log
        of the trial and its status set from Ray's. The result log of a trial that had
        reported to an earlier driver (``continued``) is written again too. Call with the sink
        flushed.
        """
        self.sink.flush()
        children = tracking.find_runs(
            self.study, f"tags.`{keys.T_PARENT_RUN}` = '{self.parent}'", self.uri
        )
        runs = {r.data.tags.get(keys.T_TRIAL_ID): r for r in children}
        fixed = {"replayed": 0, "ended": 0}
        for trial in trials:
            key = trial.config.get(TRIAL_KEY)
            want = _FINAL_STATUS.get(str(trial.status))
            run = runs.get(key)
            if key is None or want is None:
                continue
            if run is not None and run.info.status == want:
                if key in self.continued:  # ended right, but may miss epochs lost at the kill
                    fixed["replayed"] += self._replay(key, trial)
                    self._runs.pop(key, None)  # ended: not one for close() to end KILLED
                continue
            if run is None or run.info.status == "RUNNING" or want == "FINISHED":
                self._open(dict(trial.config))
                fixed["replayed"] += self._replay(key, trial)
            if want == "FINISHED":
                self._set_tags(key, {keys.T_EARLY_STOPPED: str(self._stopped_early(trial)).lower()})
                self._log_model(key, dict(trial.config), trial.checkpoint)
            self._end(key, want)
            fixed["ended"] += 1
        return fixed

    def _replay(self, key: str, trial: Any) -> int:
        """Write the trial's results from Ray's ``result.json`` again (idempotent)."""
        count = 0
        for row in result_rows(trial):
            step, stamp, metrics = metric_rows(row)
            rows = [(k, v, stamp, step) for k, v in metrics.items()]
            if rows:
                self._write_metrics(key, rows)
                count += 1
        return count

    @staticmethod
    def _stopped_early(trial: Any) -> bool:
        epochs = int(trial.config.get("epochs", 0))
        last = int((trial.last_result or {}).get(keys.M_EPOCH, epochs) or epochs)
        return 0 < last < epochs
