"""What ``capstudy launch`` prints when it ends, and the checks of ``--retry-failed``.

The results table is read back from the tracking store through :mod:`capstudy.status.view`,
the same reader as ``capstudy status``, so the two never disagree.
"""

from __future__ import annotations

from typing import Any

from capstudy.errors import CapstudyError
from capstudy.launch.searcher import RETRY_BATCH_KEY
from capstudy.status import text as studytext
from capstudy.status.causes import retry_hint
from capstudy.status.view import failures, study_state, variant_rows


def results_table(uri: str, study: str, mode: str, wall_seconds: float) -> str:
    """Per variant x init: selected trials' metrics, params, trial counts, time; then next."""
    st = study_state(uri, study)
    if st is None or not st.trials:
        return f"study {study}: no trial runs recorded"
    rows = variant_rows(st, mode)
    lines = [
        f"Results of study {study} (per variant x init: mean over seeds of each cell's "
        f"selected trial; launch wall time {studytext.duration(wall_seconds)})",
        studytext.variant_table(rows, st.metric, st.eval_domains, progress=False),
    ]
    failed = failures(st)
    for f in failed:
        lines.append(f"failed: {f['count']} x {f['cause']}")
    counts = st.counts()
    if counts["failed"]:
        lines.append(f"retry the failed trials: capstudy launch --retry-failed {study}")
        hint = retry_hint(study, [f["cause"] for f in failed])
        if hint:
            lines.append(f"with a smaller batch: {hint}")
    if counts["done"] + counts["stopped"]:
        lines.append(f"next: capstudy analyze --study {study} --find-threshold")
    return "\n".join(lines)


def retry_space(uri: str, study: str) -> str:
    """The study file of a study's latest launch, after checking it has FAILED trials.

    Raises:
        CapstudyError: no such study, or nothing failed in its latest launch.
    """
    st = study_state(uri, study)
    if st is None or not st.launches:
        raise CapstudyError(
            f"--retry-failed {study}: no study of that name in {uri}; `capstudy ls` lists them"
        )
    if not st.counts()["failed"]:
        raise CapstudyError(
            f"--retry-failed {study}: the latest launch has no FAILED trials "
            f"(`capstudy status {study}` shows where it stands)"
        )
    if not st.study_file:
        raise CapstudyError(f"--retry-failed {study}: the launch did not record its study file")
    return st.study_file


def check_retry_batch_size(retry_failed: bool, batch_size: int | None) -> None:
    """``--retry-batch-size N`` goes with ``--retry-failed`` and is a positive count.

    Raises:
        CapstudyError: it is given without ``--retry-failed``, or below 1.
    """
    if batch_size is None:
        return
    if not retry_failed:
        raise CapstudyError(
            "--retry-batch-size only applies to --retry-failed STUDY (the failed trials rerun "
            "with it); to change every trial's batch, set batch_size in the study file"
        )
    if batch_size < 1:
        raise CapstudyError(f"--retry-batch-size {batch_size}: must be 1 or more")


def retry_changes(retry_failed: bool, batch_size: int | None) -> dict[str, Any]:
    """Config values the failed trials rerun with (``--retry-batch-size``; {} otherwise)."""
    if not retry_failed or batch_size is None:
        return {}
    return {"batch_size": batch_size, RETRY_BATCH_KEY: batch_size}
