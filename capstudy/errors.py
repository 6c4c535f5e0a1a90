"""User-facing errors: one exception type the CLI turns into a clean message and exit code."""

from __future__ import annotations

import errno
import os


class CapstudyError(Exception):
    """An error caused by the user's input (a file, key or value), with how to fix it.

    The CLI prints ``error: <message>`` without a traceback and exits with status 2.
    Library code raises it (or a subclass) whenever the fix is on the user's side.
    """


class DamagedCheckpoint(CapstudyError):
    """A checkpoint that cannot be trusted: missing, truncated, corrupted or unreadable.

    A trial resuming from one falls back to an older checkpoint, or to a fresh start; it never
    trains on from a half-written state.
    """


class UntrustedWeights(CapstudyError):
    """Registered pretrained weights that must not be loaded: the downloaded file differs from
    the sha256 recorded when the version was registered, or no sha256 was recorded. Names the
    registered model, the version and what to do (the trial that asked for them fails)."""


class StorageWriteError(CapstudyError):
    """A write its storage refused (full, over quota, read-only, not permitted); says where
    and what to free or fix. Nothing half-written is kept: writes go through temporaries."""


# errno values meaning "this place cannot take the write", each with what fixes it.
_STORAGE_FIXES = {
    errno.ENOSPC: "free space there",
    errno.EDQUOT: "free space there or raise the quota",
    errno.EROFS: "make it writable again (remount it read-write)",
    errno.EACCES: "give this user write permission there",
    errno.EPERM: "give this user write permission there",
}


def storage_fault(exc: BaseException | None) -> OSError | None:
    """The error in ``exc``'s chain (causes and contexts) that is a refused write, or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _STORAGE_FIXES:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def storage_write_error(where: str, fault: OSError, then: str) -> StorageWriteError:
    """The error to raise for ``fault``: ``where`` could not be written, the fix, ``then``."""
    fix = _STORAGE_FIXES.get(fault.errno, "make it writable")
    return StorageWriteError(
        f"cannot write to {where}: {os.strerror(fault.errno)}. {fix[0].upper()}{fix[1:]}, "
        f"then {then}"
    )
