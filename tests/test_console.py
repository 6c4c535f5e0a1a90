"""Command output written to a log keeps its lines whole (rich wraps at 80 columns there)."""

from __future__ import annotations

import io

from capstudy.util import LOG_COLUMNS, console


def test_a_log_gets_whole_lines(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    line = "pretraining: 8 imagenet run(s) as Ray tasks: " + ", ".join(f"B-{i}" for i in range(30))
    assert len(line) > 80
    made = console(file=out)
    made.print(line)
    assert out.getvalue() == line + "\n"
    assert made.width == LOG_COLUMNS


def test_a_width_asked_for_is_kept(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    assert console(file=io.StringIO()).width == 60
    monkeypatch.delenv("COLUMNS")
    assert console(file=io.StringIO(), width=90).width == 90
