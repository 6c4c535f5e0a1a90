"""Power of the analysis's fast mode (what `capstudy power` runs) against its full mode.

Same simulated tables, analysed both ways: one family, 8 capacities (17 k-3.6 M), two
evaluation domains (two comparisons per study), 3 seeds, seed SD 0.02, gain 0.06 per decade
above 100 k. Usage: .venv/bin/python scripts/power_fast_vs_full.py [STUDIES]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from capstudy.analysis import tables, verdicts
from capstudy.analysis.power_design import Design, DesignVariant
from capstudy.analysis.power_sim import Effect, simulate_table

CAPS = (17_400, 28_396, 42_864, 64_644, 219_356, 501_356, 1_451_136, 3_595_388)


def main(studies: int) -> None:
    """Print how many comparisons each mode finds the threshold in."""
    variants = tuple(
        DesignVariant(
            "efficientnet_b0", -k, f"B-{k}", c, (("family", "efficientnet_b0"), ("phi", -k))
        )
        for k, c in enumerate(reversed(CAPS))
    )
    design = Design(
        "bench",
        "map50",
        "max",
        variants,
        ("random", "imagenet"),
        ("d/rgb",),
        ("d/rgb", "d/ir"),
        3,
        1,
    )
    effect = Effect(seed_sd=0.02, slope=0.06)
    found, total = {True: 0, False: 0}, 0
    start = time.process_time()
    for r in range(studies):
        sim = simulate_table(design, effect, 3, np.random.default_rng([9, r]))
        table = tables.normalize(sim, source="simulated")
        for fast in (True, False):
            fits = verdicts.verdict_table(table, seed=r, fast=fast)
            found[fast] += int(((fits.verdict == "threshold") & (fits.direction == 1)).sum())
        total += len(fits)
    print(
        f"{studies} studies x 2 comparisons: threshold found fast {found[True]}/{total}, "
        f"full {found[False]}/{total}; {time.process_time() - start:.0f} CPU-s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
