"""The tidy results table: its columns, validation, and reading/writing CSV or Parquet.

One row per trial x evaluation domain (``capstudy.keys.TIDY_COLUMNS``), then one column per
metric on that domain (``map``, ``map50``, ``top1``, ...) and one ``hpo_<name>`` column per
HPO dimension. The same table comes out of MLflow (:mod:`capstudy.analysis.results`) or from
a file made elsewhere; :func:`normalize` makes both look the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from capstudy import keys
from capstudy.errors import CapstudyError

# What a hand-made file must have: the design of each run and the selection value. The other
# TIDY_COLUMNS are filled in when absent (see normalize), capacity columns are checked when
# the analysis asks for one.
REQUIRED_COLUMNS = (
    "family",
    "phi",
    "init",
    "train_domain",
    "eval_domain",
    "seed",
    "selection_value",
)
CAPACITY_COLUMNS = {
    "backbone": "backbone_params",
    "detector": "detector_params",
    "macs": "macs",
}
# Grid columns a table may carry besides the required ones (free-scale width/depth, preset,
# input size, ...). The comparison keys are derived from those that vary (see derive_keys).
DESIGN_COLUMNS = (*keys.DESIGN_PARAM_COLUMNS, "width", "depth")
_KEY_COLUMNS = ("family", "phi", "train_domain", *DESIGN_COLUMNS, "seed")
_INT_COLUMNS = ("phi", "seed")
_FLOAT_COLUMNS = ("backbone_params", "detector_params", "macs", "selection_value")
_STR_COLUMNS = tuple(c for c in keys.TIDY_COLUMNS if c not in _INT_COLUMNS + _FLOAT_COLUMNS)


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The evaluation-metric columns: everything after the design and HPO columns."""
    design = set(keys.TIDY_COLUMNS) | set(DESIGN_COLUMNS)
    return [
        c
        for c in table.columns
        if c not in design and not str(c).startswith(keys.HPO_COLUMN_PREFIX)
    ]


def design_columns(table: pd.DataFrame) -> list[str]:
    """The optional grid columns present in the table (``width_mult``, ``image_size``, ...)."""
    return [c for c in DESIGN_COLUMNS if c in table.columns]


def derive_keys(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Comparison keys derived from the grid columns present: ``(pair_key, variant_key)``.

    The pair key is every design column except ``init``: family, phi and the train domain
    always (they are required), then each optional grid column (``DESIGN_COLUMNS``) that
    takes more than one value in the table, then the seed. A column that never varies cannot
    separate two variants, so leaving it out keeps keys short without merging anything.
    """
    varying = [c for c in design_columns(df) if df[c].astype(str).nunique() > 1]
    variant_cols = ["family", "phi", "train_domain", *varying]
    text = {c: df[c].astype(str) for c in [*variant_cols, "seed"]}
    variant = pd.Series([""] * len(df), index=df.index, dtype=object)
    for i, col in enumerate(variant_cols):
        variant = variant + ("" if i == 0 else "|") + f"{col}=" + text[col]
    return variant + "|seed=" + text["seed"], variant


def hpo_columns(table: pd.DataFrame) -> list[str]:
    """The ``hpo_<name>`` columns."""
    return [c for c in table.columns if str(c).startswith(keys.HPO_COLUMN_PREFIX)]


def cell_id(family: str, phi: int, init: str, train_domain: str, seed: int) -> str:
    """The grid cell of a trial when the source gave none: trials in it differ only in HPO."""
    return f"{family}|{phi}|{init}|{train_domain}|{seed}"


def read_table(path: str | Path, study: str | None = None) -> pd.DataFrame:
    """Read a tidy table from CSV or Parquet and normalize it.

    Raises:
        CapstudyError: the file is missing, of another type, or lacks required columns.
    """
    path = Path(path)
    if not path.is_file():
        raise CapstudyError(f"results file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = pd.read_csv(path)
    elif suffix in (".parquet", ".pq"):
        table = pd.read_parquet(path)
    else:
        raise CapstudyError(f"results file {path}: expected a .csv or .parquet file")
    return normalize(table, source=str(path), study=study or path.stem)


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the tidy table as CSV or Parquet, chosen by the file's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        table.to_parquet(path, index=False)
    else:
        raise CapstudyError(f"--export {path}: use a .csv or .parquet file name")
    return path


def normalize(table: pd.DataFrame, source: str, study: str = "") -> pd.DataFrame:
    """Validate a tidy table and fill the optional design columns.

    Args:
        table: the raw table.
        source: where it came from (named in error messages).
        study: study name used when the table has no ``study`` column.

    Returns:
        A copy with every TIDY_COLUMNS column present (in order), then metric and HPO columns.

    Raises:
        CapstudyError: required columns are missing, a value cannot be parsed, or a trial has
            two rows for the same evaluation domain.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise CapstudyError(
            f"{source}: missing required column(s) {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_COLUMNS)}; see docs/guide/analyze.md, the tidy table)"
        )
    df = table.copy()
    df = _coerce_types(df, source)
    _fill_optional(df, study)
    _check_unique(df, source)
    if not metric_columns(df):
        raise CapstudyError(f"{source}: no metric column (e.g. map50) after the design columns")
    ordered = list(keys.TIDY_COLUMNS) + design_columns(df) + metric_columns(df) + hpo_columns(df)
    return df[ordered].reset_index(drop=True)


def _check_unique(df: pd.DataFrame, source: str) -> None:
    """One row per trial and evaluation domain, with an error a user can act on."""
    dup = df.duplicated(["trial_id", "eval_domain"], keep=False)
    if not dup.any():
        return
    example = df.loc[dup, ["trial_id", "eval_domain"]].iloc[0].tolist()
    launches = sorted({p for p in df.loc[dup, "parent_run_id"] if p})
    if len(launches) > 1:
        raise CapstudyError(
            f"{source}: trial {example[0]!r} appears in {len(launches)} launches (parent runs "
            f"{', '.join(launches)}); analyse one with --parent RUN_ID (or --parent latest)"
        )
    raise CapstudyError(
        f"{source}: trial {example[0]!r} has several rows for evaluation domain "
        f"{example[1]!r}; give each trial a unique trial_id (or a parent_run_id per launch)"
    )


def _coerce_types(df: pd.DataFrame, source: str) -> pd.DataFrame:
    for col in _INT_COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | (values != np.round(values))
        if bad.any():
            raise CapstudyError(
                f"{source}: column {col} needs whole numbers; row {int(np.argmax(bad))} has "
                f"{df[col].iloc[int(np.argmax(bad))]!r}"
            )
        df[col] = values.astype(int)
    for col in _FLOAT_COLUMNS:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in metric_columns(df):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df


def _fill_optional(df: pd.DataFrame, study: str) -> None:
    """Fill absent optional columns in place (each choice documented in docs/guide/analyze.md)."""
    for col in _FLOAT_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    defaults = {"study": study, "run_id": "", "task": "", "selection_metric": ""}
    defaults.update(parent_run_id="", class_set="", selection_mode="")
    for col, value in defaults.items():
        if col not in df.columns:
            df[col] = value
    if "label" not in df.columns:
        df["label"] = [f"{f} phi={p}" for f, p in zip(df["family"], df["phi"], strict=True)]
    recorded = [df.get(c, pd.Series(dtype=object)) for c in ("pair_key", "variant_key")]
    if any(len(s) == 0 or s.isna().any() or (s.astype(str) == "").any() for s in recorded):
        # Keys are all recorded or all derived: mixing the two spellings would stop a new
        # run from pairing with an old one of the same comparison.
        df["pair_key"], df["variant_key"] = derive_keys(df)
    if "cell" not in df.columns:
        # A cell is the comparison plus the init: its trials differ only in HPO values.
        df["cell"] = df["pair_key"].astype(str) + "|init=" + df["init"].astype(str)
    if "trial_id" not in df.columns:
        # Without trial ids, a trial is its cell plus its HPO values: trials of one cell
        # differ only there.
        parts = [df["cell"].astype(str)] + [df[c].astype(str) for c in hpo_columns(df)]
        df["trial_id"] = pd.concat(parts, axis=1).agg("|".join, axis=1)
    for col in _STR_COLUMNS:
        df[col] = df[col].fillna("").astype(str)
