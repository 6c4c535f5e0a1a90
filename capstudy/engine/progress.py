"""An optional rich progress bar over a trial's optimizer steps (a no-op when disabled)."""

from __future__ import annotations


class StepProgress:
    """Context manager showing steps done, speed and time left, or nothing.

    rich is imported only when the bar is shown: trials under Ray run without it.
    """

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled and total > 0
        self.total = total
        self._progress = None
        self._task = None

    def __enter__(self) -> StepProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("training", total=self.total)
        return self

    def advance(self, description: str) -> None:
        """One step done."""
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=description)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
