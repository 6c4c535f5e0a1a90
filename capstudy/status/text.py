"""Plain-text tables of study progress and results (pure: stdlib only).

Shared by ``capstudy status`` and the results table at the end of ``capstudy launch``; no box
drawing, so the output pastes into logs, issues and papers' notes unchanged.
"""

from __future__ import annotations


def num(value, digits: int = 4) -> str:
    """A metric or count as text: '-' when missing, thousands separators for large values."""
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def count(value) -> str:
    """A parameter count: ``9,024`` ('-' when missing)."""
    return "-" if value is None else f"{float(value):,.0f}"


def duration(seconds: float) -> str:
    """Seconds as ``12m05s`` or ``3h07m``."""
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def variant_table(rows: list[dict], metric: str, domains: list[str], progress: bool) -> str:
    """Variant x init rows as text: progress columns (status) or results columns (launch)."""
    name = metric.rsplit("/", 1)[-1]
    many = len({r["train"] for r in rows}) > 1
    head = ["variant", "init", *(["train"] if many else []), "params"]
    head += ["cells", "done", "stopped", "running", "failed"] if progress else []
    head += [f"best {metric}" if progress else f"{metric} (selected)"]
    head += [] if progress else [f"{d} {name}" for d in domains]
    head += ["time"] + ([] if progress else ["done", "stopped", "failed"])
    body = []
    for r in rows:
        line = [r["variant"], r["init"], *([r["train"]] if many else []), count(r["params"])]
        if progress:
            line += [r["cells"], r["done"], r["stopped"], r["running"], r["failed"], num(r["best"])]
        else:
            line += [num(r["selected"]), *(num(r["eval"].get(d)) for d in domains)]
        line.append(duration(r["seconds"]))
        body.append(line + ([] if progress else [r["done"], r["stopped"], r["failed"]]))
    return text_table(head, body)


def text_table(head, body) -> str:
    """A plain fixed-width table (no box drawing: it pastes into logs and issues)."""
    cells = [[str(x) for x in head], *([str(x) for x in row] for row in body)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*row).rstrip() for row in cells)
