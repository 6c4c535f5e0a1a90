"""Tracking keys: every MLflow param, tag and metric name, and the tidy results columns.

Defined once here (pure module, stdlib only) so the trial, the launcher, the pretraining
stages and the analysis all agree, and a rename touches one file.

Metric names use ``/`` as a separator (MLflow accepts it and groups by prefix in the UI):

* ``val/<name>``                in-domain validation metric of the train domain (selection)
* ``eval/<domain>/<name>``      every evaluation domain, e.g. ``eval/synth_a/ir/map50``
  (the train domain's validation split also appears here, so a table of domains is uniform)
* ``train/loss``                mean training loss of the epoch
* ``capacity/<kind>``           backbone params, detector params, MACs (see capstudy.capacity)
* ``perf/<name>``               throughput and epoch wall time
"""

from __future__ import annotations

# --- params (one value per run) -------------------------------------------------------
P_FAMILY = "family"
P_PHI = "phi"
P_LABEL = "label"  # paper label, e.g. "B-4", "S-2" (data, not a name)
P_PRESET = "preset"
P_WIDTH_MULT = "width_mult"
P_DEPTH_MULT = "depth_mult"
P_RESOLUTION = "resolution"  # the variant's native resolution from the scaling recipe
P_IMAGE_SIZE = "image_size"  # the study's input size for a base-resolution (224) variant
P_INPUT_SIZE = "input_size"  # the size the trial actually trains and evaluates at
P_INIT = "init"
P_TRAIN_DOMAIN = "train_domain"
P_EVAL_DOMAINS = "eval_domains"
P_SEED = "seed"
P_TASK = "task"
P_HEAD_WIDTH = "head_width"
P_EPOCHS = "epochs"
P_BATCH_SIZE = "batch_size"
P_STUDY_METRIC = "study_metric"  # the selection metric key, e.g. val/map50
P_STUDY_MODE = "study_mode"  # its direction from the study file: max | min
# HPO values are logged as params ``hpo/<name>`` (``hpo/lr``) and become ``hpo_<name>``
# columns in the tidy table, so they cannot collide with design columns.
P_HPO_PREFIX = "hpo/"
HPO_COLUMN_PREFIX = "hpo_"

# --- tags --------------------------------------------------------------------------
T_KIND = "capstudy.kind"  # "study" (parent), "trial", "pretrain", "analysis"
T_STUDY = "capstudy.study"
T_CELL = "capstudy.cell"  # stable id of the grid cell (family, phi, init, train, seed)
T_TRIAL_ID = "capstudy.trial_id"
T_GIT_COMMIT = "capstudy.git_commit"
T_CONFIG_HASH = "capstudy.config_hash"
T_DATA_FINGERPRINT = "capstudy.data_fingerprint"
T_CAPACITY_CONVENTION = "capstudy.capacity_convention"
T_PARENT_RUN = "mlflow.parentRunId"  # MLflow's own key for nested runs
T_EARLY_STOPPED = "capstudy.early_stopped"  # "true" when per-cell ASHA stopped the trial
# Lineage of a trial's pretrained init: the registered weights it loaded.
T_INIT_MODEL = "capstudy.init_model"
T_INIT_VERSION = "capstudy.init_version"
T_INIT_RUN_ID = "capstudy.init_run_id"
# On a pretraining run: the registered model and version it produced.
T_REGISTERED_MODEL = "capstudy.registered_model"
T_MODEL_VERSION = "capstudy.model_version"
# On a pretraining run made in a launch: the Ray task that ran the stage (the same across
# Ray's retries of it), so the driver settles the runs of attempts whose process was lost.
T_PRETRAIN_TASK = "capstudy.pretrain_task"

# Tags of a registered weights version (MLflow model registry; see capstudy.registry).
T_STAGE = "capstudy.stage"  # imagenet | coco
T_SETTINGS = "capstudy.settings_hash"  # hash of the pretraining settings that made it
T_RECIPE = "capstudy.recipe"  # the stage's trial config as JSON
T_EPOCHS = "capstudy.epochs"
T_RUN = "capstudy.run_id"  # the pretraining run that produced the version
T_PARENT_NAME = "capstudy.parent_model"  # coco stage: the imagenet weights it started from
T_PARENT_VERSION = "capstudy.parent_version"
T_PARENT_RUN_ID = "capstudy.parent_run_id"
# The hex sha256 of the version's weights file, recorded when it is registered and checked
# after every download, before a trial (or a coco stage) loads it (capstudy.registry).
T_WEIGHTS_SHA256 = "capstudy.weights_sha256"

# MLflow layout: one experiment per study, named after the study (``study.name``); in it a
# parent run tagged kind=study and one child run per trial tagged kind=trial, whose
# ``mlflow.parentRunId`` is the parent. Pretraining runs live in the experiment
# ``capstudy-pretrain``; analysis runs in the study's experiment, tagged kind=analysis.
PRETRAIN_EXPERIMENT = "capstudy-pretrain"

KIND_STUDY = "study"
KIND_TRIAL = "trial"
KIND_PRETRAIN = "pretrain"
KIND_ANALYSIS = "analysis"

# --- metrics -------------------------------------------------------------------------
M_VAL_PREFIX = "val/"
M_EVAL_PREFIX = "eval/"
M_TRAIN_LOSS = "train/loss"
# The loss on the validation subset (val_eval: rungs), every epoch: from the val/* mAP pass on
# the epochs that have one, from a forward-and-loss pass on the others.
M_VAL_LOSS = "val/loss"
M_BACKBONE_PARAMS = "capacity/backbone_params"
M_DETECTOR_PARAMS = "capacity/detector_params"
M_MACS = "capacity/macs"
M_IMAGES_PER_S = "perf/images_per_s"
M_EPOCH_TIME = "perf/epoch_time_s"
M_EPOCH = "epoch"

# Detection metric names (COCO): mAP@[.5:.95] and mAP@.5; classification: top-1.
DETECTION_METRICS = ("map", "map50")
CLASSIFICATION_METRICS = ("top1",)


def val_metric(name: str) -> str:
    """In-domain validation metric key, e.g. ``val/map50``."""
    return f"{M_VAL_PREFIX}{name}"


def eval_metric(domain: str, name: str) -> str:
    """Evaluation-domain metric key, e.g. ``eval/synth_a/ir/map50``."""
    return f"{M_EVAL_PREFIX}{domain}/{name}"


def class_ap(class_name: str) -> str:
    """Per-class detection AP metric name, e.g. ``ap_traffic_light``.

    Used as ``eval_metric(domain, class_ap(name))``. No ``/`` in it, so
    :func:`split_eval_metric` still splits the domain off correctly.
    """
    slug = "".join(c if c.isalnum() else "_" for c in class_name.strip().lower())
    return f"ap_{slug}"


def split_eval_metric(key: str) -> tuple[str, str] | None:
    """Inverse of :func:`eval_metric`: ``eval/flir/ir/map`` -> ``("flir/ir", "map")``."""
    if not key.startswith(M_EVAL_PREFIX):
        return None
    domain, _, name = key[len(M_EVAL_PREFIX) :].rpartition("/")
    return (domain, name) if domain and name else None


# --- the tidy results table (analysis input; docs/guide/analyze.md) ---------------------
# One row per trial x evaluation domain.
TIDY_COLUMNS = (
    "study",  # study name
    "run_id",  # MLflow run id (empty for results made elsewhere)
    "trial_id",  # unique within a study
    "cell",  # grid cell id: trials of one cell differ only in HPO values
    "task",  # detection | classification
    "family",  # efficientnet_b0 | mobilenetv3_small
    "phi",  # int scaling step (0, -1, ... )
    "label",  # B0, B-4, S-2, ...
    "init",  # random | imagenet | imagenet_coco | <path>
    "train_domain",  # e.g. synth_a/rgb
    "eval_domain",  # e.g. synth_a/ir
    "seed",  # int
    "backbone_params",  # capacity, three ways (capstudy.capacity defines them)
    "detector_params",
    "macs",
    "selection_metric",  # name of the study metric, e.g. val/map50
    "selection_value",  # the trial's final in-domain validation value of that metric
)
# After these come one column per metric on the evaluation domain (``map``, ``map50`` for
# detection, ``top1`` for classification) and one ``hpo_<name>`` column per HPO dimension.


# --- comparison keys, launch of a trial, class sets --------------------------------------
# The comparison a trial belongs to: every grid dim of its cell except ``init`` (pair key),
# and the same without ``seed`` (variant key). Gains subtract only trials with equal pair keys.
T_PAIR_KEY = "capstudy.pair_key"
T_VARIANT_KEY = "capstudy.variant_key"
# Classes a shift metric was scored on. Read as ``<prefix>.<domain>`` or ``<prefix>/<domain>``
# (one tag per evaluation domain) or a bare ``<prefix>`` that applies to every domain; the
# engine writes it (a change of spelling belongs on this line only).
T_CLASS_SET_PREFIX = "capstudy.class_set"
_INIT_DIM = "init"
_SEED_DIM = "seed"
_CELL_SEPARATOR = "|"


def comparison_keys(cell_id: str) -> tuple[str, str]:
    """``(pair_key, variant_key)`` of a cell id such as ``efficientnet_b0|phi=-4|init=x|seed=0``.

    The cell id lists every grid dim of the study (``capstudy.study.cells``); dropping ``init``
    leaves the comparison, dropping ``seed`` as well leaves the variant. The family is the one
    dim written bare; it never equals ``init=...`` or ``seed=...``.
    """
    parts = [p for p in cell_id.split(_CELL_SEPARATOR) if p]
    pair = [p for p in parts if not p.startswith(f"{_INIT_DIM}=")]
    variant = [p for p in pair if not p.startswith(f"{_SEED_DIM}=")]
    return _CELL_SEPARATOR.join(pair) or "all", _CELL_SEPARATOR.join(variant) or "all"


# Optional design columns of the tidy table, each filled from the trial param of that name:
# grid dims other than the required ones, which the comparison keys are derived from when a
# table lacks them (hand-made tables, runs recorded before these keys existed).
DESIGN_PARAM_COLUMNS = {
    "preset": P_PRESET,
    "width_mult": P_WIDTH_MULT,
    "depth_mult": P_DEPTH_MULT,
    "resolution": P_RESOLUTION,
    "image_size": P_IMAGE_SIZE,
    "head_width": P_HEAD_WIDTH,
    "epochs": P_EPOCHS,
}
TIDY_COLUMNS = TIDY_COLUMNS + (
    "pair_key",  # the comparison: every grid dim except init (T_PAIR_KEY or derived)
    "variant_key",  # pair_key without seed: one model variant
    "parent_run_id",  # the launch (parent study run) the trial belongs to; "" if unknown
    "class_set",  # classes the eval-domain metrics were scored on; "" if not recorded
    "selection_mode",  # the study's mode (max | min) for selection_metric; "" if not recorded
)

# --- GPU throughput, determinism, divergence -----------------------------------------------
# 1.0 on the (only) report of a trial whose training loss became non-finite; the trial then
# ends without retrying (its val/eval metrics on that report are NaN).
M_DIVERGED = "train/diverged"
# --- held-out validation subset, class sets -----------------------------------------------
# ``val/*`` metrics come from a subset carved from the train domain's training split
# (``TrialConfig.val_fraction``, param ``val_fraction``); this tag fingerprints that subset.
T_VAL_FINGERPRINT = "capstudy.val_fingerprint"
# One tag per evaluation domain: the comma-separated classes its detection metrics cover
# (the classes both the train and that domain annotate), e.g.
# ``capstudy.class_set.synth_b/rgb = person``.


def class_set_tag(domain: str) -> str:
    """Tag key of the class set of ``domain``'s metrics, e.g. ``capstudy.class_set.flir/ir``."""
    return f"{T_CLASS_SET_PREFIX}.{domain}"


# --- status, cost, lineage of launched trials ---------------------------------------------
T_ERROR = "capstudy.error"  # last line of a failed trial's error (grouped by `status`)
T_RETRY_OF = "capstudy.retry_of"  # run id of the FAILED run a --retry-failed trial replaces
# --- faults: damaged checkpoints, out of memory ------------------------------------------
# A resumed trial found its checkpoint damaged and fell back: what it skipped and where it
# resumed (also printed by the launch as a warning).
T_CHECKPOINT_DAMAGED = "capstudy.checkpoint_damaged"
# Times Ray retried the trial (FailureConfig), by cause: JSON ``{cause line: count}``
# (a lost node, out of memory, ...); `capstudy status` sums them over the study.
T_RETRIES = "capstudy.retries"
# The batch size a `--retry-failed --retry-batch-size` rerun trained with (the run's
# ``batch_size`` param keeps the study's value: MLflow params cannot change).
T_RETRY_BATCH_SIZE = "capstudy.retry_batch_size"
# Device time a trial used: wall seconds x its share of a device (GPU fraction, else CPUs).
M_DEVICE_SECONDS = "cost/device_seconds"
# CPU inference latency at batch 1 (ms per image), on the launch's parent run per variant.
M_CPU_LATENCY_PREFIX = "latency/cpu_ms/"

# --- remote Ray storage (--storage s3://...) ----------------------------------------------
# On a launch's parent run: the Ray storage it ran in (a path or a URI; pyarrow takes no
# credentials in a URI, so none are recorded), so `capstudy status` finds the study's state
# in that storage without --storage.
T_STORAGE = "capstudy.storage"

# --- sequential studies: seeds in planned looks -------------------------------------------
# On the parent run: the boundaries (JSON, computed before the first trial), the last look
# decided, and each look's decision (``capstudy.sequential.look.<k>``: JSON with the look's
# seeds, p-value, boundary and decision). Metrics at step k: the look's shared-test p-value,
# its statistic and its efficacy boundary.
T_SEQ_BOUNDARIES = "capstudy.sequential.boundaries"
T_SEQ_LOOK = "capstudy.sequential.look"
T_SEQ_DECISION = "capstudy.sequential.decision"
T_SEQ_LOOK_PREFIX = "capstudy.sequential.look."
M_SEQ_P = "sequential/p"
M_SEQ_Z = "sequential/z"
M_SEQ_BOUNDARY_P = "sequential/boundary_p"
