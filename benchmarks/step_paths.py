"""The training step, old path against new, per variant, in one run (CPU or GPU).

Old: torchvision's per-image FCOS loss and an unfused optimizer. New: the trial's defaults
(batched FCOS loss; on a GPU also the fused optimizer, and CUDA graphs with --cuda-graphs).
Each round times every variant's old and new step back to back on one device-resident
batch (``capstudy.engine.breakdown.step_timing``), so a machine whose load changes affects
both alike; the medians over rounds and their ratio are printed, with the loss phase
(target assignment + loss) of each.

Usage:
    python benchmarks/step_paths.py                      # every bench variant, 256 px, 1 thread
    python benchmarks/step_paths.py --variant B-7 --rounds 5 --seconds 2
"""

from __future__ import annotations

import argparse
import statistics

from capstudy.engine.bench import BENCH_VARIANTS, OLD_STEP, bench_config
from capstudy.engine.breakdown import step_timing
from capstudy.variants import make_variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", help="paper label (repeatable)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed window per step")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cuda-graphs", action="store_true")
    args = parser.parse_args()
    chosen = [
        (f, p)
        for f, p in BENCH_VARIANTS
        if not args.variant or make_variant(f, p).label in args.variant
    ]
    print(
        f"{'variant':8} {'old img/s':>10} {'new img/s':>10} {'new/old':>8} "
        f"{'old loss ms':>12} {'new loss ms':>12}"
    )
    for family, phi in chosen:
        new = bench_config(
            family,
            phi,
            args.size,
            device=args.device,
            images=16,
            batch_size=args.batch_size,
            threads=args.threads,
            cuda_graphs=args.cuda_graphs,
        )
        old = new.replace(**OLD_STEP)
        timings = {"old": [], "new": []}
        for _ in range(args.rounds):
            for name, config in (("old", old), ("new", new)):
                timings[name].append(step_timing(config, seconds=args.seconds))
        rate = {k: statistics.median(t.images_per_s for t in v) for k, v in timings.items()}
        loss = {
            k: statistics.median(t.phases_ms.get("loss", float("nan")) for t in v)
            for k, v in timings.items()
        }
        label = make_variant(family, phi).label
        print(
            f"{label:8} {rate['old']:10.1f} {rate['new']:10.1f} {rate['new'] / rate['old']:8.3f} "
            f"{loss['old']:12.2f} {loss['new']:12.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
