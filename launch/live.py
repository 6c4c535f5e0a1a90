"""A live terminal view of a running study: cells done, running, stopped early; best so far."""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from typing import Any

from ray.tune import Callback
from rich.live import Live
from rich.table import Table

from capstudy.launch.searcher import CELL_ID_KEY, CELL_KEY, TRIAL_KEY
from capstudy.util import console as make_console


class LiveView(Callback):
    """Renders study progress with rich (refreshing in a terminal, a line a minute otherwise).

    Args:
        study: Study name.
        metric: The selection metric (in-domain validation).
        mode: ``max`` or ``min``.
        total_cells: Cells in the study.
        trials_per_cell: Trials in each cell.
        epochs: Epochs of a full trial (to tell early stops).
    """

    def __init__(
        self,
        study: str,
        metric: str,
        mode: str,
        total_cells: int,
        trials_per_cell: int,
        epochs: int,
    ) -> None:
        self.study, self.metric, self.mode = study, metric, mode
        self.total_cells, self.per_cell, self.epochs = total_cells, trials_per_cell, epochs
        self.console = make_console(file=sys.stdout)
        self._live: Live | None = None
        self._last_line = 0.0
        self._best: tuple[float, str] | None = None
        self._done: dict[str, int] = defaultdict(int)
        self._stopped_early = 0
        self._failed = 0
        self._last_epoch: dict[str, int] = {}
        self._running: set[str] = set()

    def __getstate__(self) -> dict:
        # Ray pickles callbacks with the experiment (for --resume); a console and a live
        # display hold locks and a terminal, so they are made again after unpickling.
        state = dict(self.__dict__)
        state["console"] = None
        state["_live"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.console = make_console(file=sys.stdout)

    # -- Ray callback hooks -------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        self._running.add(trial.trial_id)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._last_epoch[trial.trial_id] = int(result.get("epoch", 0))
        value = result.get(self.metric)
        if isinstance(value, int | float) and not math.isnan(value):
            better = self._best is None or (
                value > self._best[0] if self.mode == "max" else value < self._best[0]
            )
            if better:
                self._best = (float(value), trial.config.get(CELL_ID_KEY, trial.trial_id))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial)
        if 0 < self._last_epoch.get(trial.trial_id, self.epochs) < self.epochs:
            self._stopped_early += 1

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial)
        self._failed += 1

    def on_step_end(self, iteration, trials, **info):
        self.refresh()

    def on_experiment_end(self, trials, **info):
        self.refresh(force=True)
        self.stop()

    # -- rendering ----------------------------------------------------------------------
    def _finish(self, trial: Any) -> None:
        self._running.discard(trial.trial_id)
        self._done[trial.config.get(CELL_KEY, trial.config.get(TRIAL_KEY, "?"))] += 1

    def counts(self) -> dict[str, Any]:
        """What the view shows, as numbers (also used by tests)."""
        cells_done = sum(1 for n in self._done.values() if n >= self.per_cell)
        return {
            "cells_done": cells_done,
            "cells_total": self.total_cells,
            "trials_running": len(self._running),
            "trials_done": sum(self._done.values()),
            "trials_total": self.total_cells * self.per_cell,
            "stopped_early": self._stopped_early,
            "failed": self._failed,
            "best": self._best,
        }

    def table(self) -> Table:
        """A rich table of the current counts."""
        c = self.counts()
        t = Table(title=f"capstudy launch: {self.study}", show_header=False)
        t.add_row("cells done", f"{c['cells_done']} / {c['cells_total']}")
        t.add_row("trials done", f"{c['trials_done']} / {c['trials_total']}")
        t.add_row("running", str(c["trials_running"]))
        t.add_row("stopped early (ASHA)", str(c["stopped_early"]))
        t.add_row("failed", str(c["failed"]))
        best = "–" if c["best"] is None else f"{c['best'][0]:.4f}  ({c['best'][1]})"
        t.add_row(f"best {self.metric}", best)
        return t

    def refresh(self, force: bool = False) -> None:
        """Redraw (terminal) or print a summary line at most once a minute (logs)."""
        if self.console.is_terminal:
            if self._live is None:
                self._live = Live(self.table(), console=self.console, refresh_per_second=2)
                self._live.start()
            self._live.update(self.table())
            return
        now = time.monotonic()
        if force or now - self._last_line > 60:
            self._last_line = now
            c = self.counts()
            best = "-" if c["best"] is None else f"{c['best'][0]:.4f}"
            self.console.print(
                f"[{self.study}] cells {c['cells_done']}/{c['cells_total']}, trials "
                f"{c['trials_done']}/{c['trials_total']} (running {c['trials_running']}, "
                f"stopped early {c['stopped_early']}, failed {c['failed']}), "
                f"best {self.metric} {best}"
            )

    def stop(self) -> None:
        """Leave the live display (its last frame stays on screen)."""
        if self._live is not None:
            self._live.stop()
            self._live = None
