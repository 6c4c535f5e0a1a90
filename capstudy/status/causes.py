"""A failed trial's cause in one line, from its error text (pure: stdlib only).

Shared by the launch's recorder (the ``capstudy.error`` tag, the retries by cause), ``capstudy
status`` and the launch's results table, so a cause is named the same way everywhere. Out of
memory is named as such whatever raised it, since its fix is the same: a smaller batch, or
more memory. A lost trial process or node (preempted, rebooted, its raylet or the process
killed) is named as such too: Ray retries the trial from its last checkpoint, on a node that
is left, and the study goes on.
"""

from __future__ import annotations

import re
from typing import Any

OUT_OF_MEMORY = "out of memory"
# What each allocator says when it runs out: torch on a GPU (OutOfMemoryError, "CUDA out of
# memory"), torch on a CPU (a RuntimeError: "DefaultCPUAllocator: can't allocate memory"),
# Python and numpy (MemoryError, "Unable to allocate"), Ray's memory monitor
# (ray.exceptions.OutOfMemoryError), the kernel (ENOMEM: "Cannot allocate memory").
_OOM = re.compile(
    r"OutOfMemoryError|out of memory|\bMemoryError\b|can't allocate memory|"
    r"cannot allocate memory|Unable to allocate",
    re.IGNORECASE,
)
LOST = "process or node lost"
# How Ray says a trial's process went away, alone or with its node: before the cluster has
# marked a lost node dead, its actors are only "unavailable" (the socket closed); after, they
# "died because the node died".
_LOST = re.compile(
    r"actor \S+ is unavailable|actor is temporarily unavailable|actor died|ActorDiedError|"
    r"ActorUnavailableError|node has died|node died|NodeDiedError|node was terminated|"
    r"health check failed|raylet (?:died|crashed|is dead)|worker (?:process )?(?:has )?died",
    re.IGNORECASE,
)
MAX_LINE = 300  # a tag value and a table cell stay readable


def last_line(text: str) -> str:
    """The last non-empty line of an error text (the exception and its message), or ''."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def last_error_line(path: Any) -> str:
    """The cause line (:func:`cause_line`) of an error file (a path or a storage place), or ''
    when it cannot be read."""
    try:
        return cause_line(path.read_text(errors="replace"))
    except OSError:
        return ""


def is_out_of_memory(text: str) -> bool:
    """Whether an error text is an allocation that failed (any device, any allocator)."""
    return bool(_OOM.search(text))


def cause_line(text: str) -> str:
    """The line that names a failure: its last line, prefixed ``out of memory:`` for OOMs;
    for a lost process or node, ``process or node lost:`` and the line of Ray's that says so."""
    line = last_line(text)
    if line and is_out_of_memory(line) and not line.lower().startswith(OUT_OF_MEMORY):
        line = f"{OUT_OF_MEMORY}: {line}"
    elif not line.lower().startswith(LOST):
        said = [ln.strip() for ln in text.splitlines() if _LOST.search(ln)]
        if said:
            line = f"{LOST}: {said[-1]}"
    return line[:MAX_LINE]


def count_causes(counts: list[dict[str, int]]) -> list[tuple[str, int]]:
    """Per-trial ``{cause: count}`` summed over trials, most frequent first."""
    total: dict[str, int] = {}
    for one in counts:
        for cause, n in one.items():
            total[cause] = total.get(cause, 0) + int(n)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))


def retry_hint(study: str, causes: list[str]) -> str | None:
    """How to rerun trials that ran out of memory with a smaller batch (None: none did)."""
    if not any(c.startswith(OUT_OF_MEMORY) for c in causes):
        return None
    return (
        f"capstudy launch --retry-failed {study} --retry-batch-size N   # out of memory: "
        "N below the batch size they ran with (half is a good first try)"
    )
