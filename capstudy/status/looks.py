"""Where a sequential study stands: its boundaries, the looks decided, the look running.

Read from the parent run's tags (written by the launch before the first trial and after
each look) and from the state file (the look in progress); plain data for ``status --json``
and its lines for ``capstudy status``.
"""

from __future__ import annotations

import json

from capstudy import keys


def sequential_facts(tags: dict[str, str], state: dict) -> dict:
    """{} for a fixed study; else boundaries, decided looks and the current look."""
    raw = tags.get(keys.T_SEQ_BOUNDARIES)
    if not raw and not state.get("boundaries"):
        return {}
    bounds = json.loads(raw) if raw else state["boundaries"]
    decided = []
    for look in range(1, len(bounds["looks"]) + 1):
        record = tags.get(f"{keys.T_SEQ_LOOK_PREFIX}{look}")
        if record:
            decided.append(json.loads(record))
    stopped = bool(decided) and decided[-1]["decision"] != "continue"
    current = decided[-1]["look"] if stopped else int(state.get("look") or len(decided) + 1)
    return {
        "looks": bounds["looks"],
        "spending": bounds["spending"],
        "alpha": bounds["alpha"],
        "boundary_p": bounds["p"],
        "futility": bounds["futility"],
        "decided": decided,
        "look": current,
        "stopped": stopped,
    }


def sequential_lines(facts: dict) -> list[str]:
    """The status lines of :func:`sequential_facts` ([] for a fixed study)."""
    if not facts:
        return []
    looks = facts["looks"]
    spending = {"obf": "O'Brien-Fleming", "pocock": "Pocock"}.get(facts["spending"], "")
    futility = facts["futility"]
    lines = [
        f"sequential design: looks at {', '.join(map(str, looks))} seeds, {spending} alpha "
        f"spending (alpha {facts['alpha']:g})"
        + (f", futility at p >= {futility:g}" if futility is not None else ""),
        "  boundaries (threshold if p <=): "
        + ", ".join(f"look {k} {c:.4f}" for k, c in enumerate(facts["boundary_p"], start=1)),
    ]
    for d in facts["decided"]:
        p = "not testable" if d["p"] != d["p"] else f"p = {d['p']:.4f}"
        lines.append(f"  look {d['look']} ({d['seeds']} seeds): {p} -> {d['decision']}")
    if facts["stopped"]:
        lines.append(f"  stopped at look {facts['look']} of {len(looks)}")
    else:
        k = facts["look"]
        lines.append(f"  look {k} of {len(looks)} runs (seeds up to {looks[k - 1]})")
    return lines
