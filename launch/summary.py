"""What ``capstudy launch`` prints when it ends (its results, or why its storage stopped it),
and the checks of ``--retry-failed``.

The results table is read back from the tracking store through :mod:`capstudy.status.view`,
the same reader as ``capstudy status``, so the two never disagree.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from capstudy.errors import CapstudyError, storage_fault, storage_write_error
from capstudy.launch.searcher import RETRY_BATCH_KEY
from capstudy.status import text as studytext
from capstudy.status.causes import retry_hint
from capstudy.status.view import failures, study_state, variant_rows
from capstudy.storage import Place
from capstudy.study import StudySpec


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


def storage_refusal(
    exc: BaseException, exp_path: Place, space: str, storage: str | None
) -> CapstudyError | None:
    """The error a launch ends with when its storage refused a write (full, read-only), or
    None when ``exc`` is something else.

    The refusal is found in ``exc``'s chain, or else by a probe write (Ray reports some
    refusals as other errors, e.g. an error file it wrote empty and read back).
    """
    if isinstance(exc, CapstudyError):
        return None
    refused = storage_fault(exc) or exp_path.refused_write()
    if refused is None:
        return None
    where = f" --storage {storage}" if storage else ""
    then = f"finish the study with `capstudy launch --space {space}{where} --resume`"
    return storage_write_error(f"the study's storage {exp_path}", refused, then)


def print_results(
    console: Console, uri: str, spec: StudySpec, seconds: float, warnings: list[str]
) -> None:
    """The results table; a store that cannot be read back must not fail a finished study.

    Then the warnings of the launch (trials that fell back from a damaged checkpoint).
    """
    try:
        table = results_table(uri, spec.name, spec.mode, seconds)
        console.print(table, highlight=False, soft_wrap=True)  # a table must not wrap
    except Exception as exc:  # the runs are recorded; only the table is lost
        console.print(f"[yellow]note:[/] no results table ({exc}); see `capstudy status`")
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
