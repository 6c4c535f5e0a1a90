"""User-facing errors: one exception type the CLI turns into a clean message and exit code."""

from __future__ import annotations


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
