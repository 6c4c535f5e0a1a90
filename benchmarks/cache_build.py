"""Cache build speed: one decoding thread vs the default count, on an ImageFolder of JPEGs.

Writes an ImageNet-layout folder (``train/<class>/*.JPEG``; default 3000 images, 20 classes,
320x240, structured random content: gradients, shapes and noise, so the JPEGs decode like
photos rather than flat colour), then builds its cache entry through the path trials and
pretraining use, :func:`capstudy.data.get_split` on dataset ``imagenet``, once with
``CAPSTUDY_DECODE_WORKERS=1`` and once with the default worker count, each into an empty
cache. Builds alternate (serial, parallel, serial, …) so a change in the machine's load hits
both; the best round of each is the figure. Prints images/s of each, the ratio (the baseline
is measured in this run), and whether both entries hold the same bytes.

    python benchmarks/cache_build.py                     # 3000 images in a temp folder
    python benchmarks/cache_build.py --images 1000 --out /tmp/if --rounds 3

The timed span is the whole ``get_split`` call (listing the folder, fingerprinting, decoding,
writing the memmap), i.e. what the first trial or pretraining stage on a node waits for.

Speed-ups need idle cores, so the benchmark also prints a figure that a busy machine cannot
spoil: during the parallel builds a separate process samples the kernel state of this
process's threads (``/proc/<pid>/task/*/stat``) every ~0.5 ms. A thread waiting for the GIL
sleeps (S); one decoding with the GIL released is runnable (R) even while it waits for a core.
``*_two_runnable`` is the share of samples in which at least two threads were runnable at
once: about 0 for the serial build (the control), and for the threaded one the share of
the time two threads were decoding at once (near 0 if Pillow held the GIL).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from capstudy.data import get_split
from capstudy.data.cache import DECODE_WORKERS_ENV, decode_workers
from capstudy.recipes import recipe


def write_imagefolder(root: Path, images: int, classes: int, size: tuple[int, int]) -> None:
    """``images`` JPEGs in ``classes`` class folders under ``root/train`` (seeded)."""
    rng = np.random.default_rng(0)
    w, h = size
    ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    for i in range(images):
        cls = i % classes
        base = rng.uniform(40, 200, 3).astype(np.float32)
        arr = base + 60 * ramp * rng.uniform(-1, 1, 3).astype(np.float32)
        arr = arr + rng.normal(0, 12, (h, w, 3)).astype(np.float32)  # sensor-like noise
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(3, 9))):
            x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
            x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((x0, y0, x1, y1), fill=fill)
        path = root / "train" / f"n{cls:08d}" / f"n{cls:08d}_{i}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, quality=90)


def build(root: Path, cache: Path, workers: int, size: int) -> tuple[float, bytes]:
    """Seconds of one cold ``get_split`` build with ``workers`` threads; the images' bytes."""
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["CAPSTUDY_CACHE"] = str(cache)
    os.environ[DECODE_WORKERS_ENV] = str(workers)
    start = time.perf_counter()
    split = get_split("imagenet/rgb", "train", size, roots={"imagenet": str(root)})
    seconds = time.perf_counter() - start
    return seconds, (split.path / "images.npy").read_bytes()


SAMPLER = r"""
import os, sys, time
pid, stop = sys.argv[1], sys.argv[2]
counts = [0, 0]
while not os.path.exists(stop):
    running = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                running += fh.read().rsplit(")", 1)[1].split()[0] == "R"
        except OSError:
            pass
    counts[running >= 2] += 1
    time.sleep(0.0005)
print(counts[1] / max(sum(counts), 1))
"""


def sampled(fn, stop: Path, probe: bool = True) -> tuple[object, float]:
    """``fn()``'s result and the share of samples with two or more threads runnable.

    The sampler takes part of a core itself: ``probe=False`` (``--no-probe``) times the
    builds without it (share reported as NaN).
    """
    if not probe:
        return fn(), float("nan")
    stop.unlink(missing_ok=True)
    probe = subprocess.Popen(
        [sys.executable, "-c", SAMPLER, str(os.getpid()), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        result = fn()
    finally:
        stop.write_text("")
        out, _ = probe.communicate(timeout=60)
    return result, float(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--source-size", default="320x240", help="WxH of the JPEGs written")
    parser.add_argument(
        "--size",
        type=int,
        default=recipe("pretrain", "imagenet")["image_size"],
        help="cache side in pixels (default: the imagenet pretraining stage's)",
    )
    parser.add_argument("--workers", type=int, default=None, help="default: decode_workers()")
    parser.add_argument("--rounds", type=int, default=2, help="builds of each kind")
    parser.add_argument("--out", type=Path, default=None, help="keep the ImageFolder here")
    parser.add_argument(
        "--no-probe", action="store_true", help="time without the thread-state sampler"
    )
    args = parser.parse_args()
    os.environ.pop(DECODE_WORKERS_ENV, None)
    workers = args.workers or decode_workers()
    work = Path(tempfile.mkdtemp(prefix="capstudy-cache-bench-"))
    root = args.out or work / "imagefolder"
    try:
        sw, sh = (int(v) for v in args.source_size.split("x"))
        if not (root / "train").is_dir():
            start = time.perf_counter()
            write_imagefolder(root, args.images, args.classes, (sw, sh))
            print(f"wrote {args.images} JPEGs in {time.perf_counter() - start:.1f} s to {root}")
        times: dict[int, list[float]] = {1: [], workers: []}
        data: dict[int, bytes] = {}
        shares: dict[int, list[float]] = {1: [], workers: []}
        for _ in range(args.rounds):
            for n in dict.fromkeys((1, workers)):
                (seconds, data[n]), share = sampled(
                    lambda n=n: build(root, work / f"cache-{n}", n, args.size),
                    work / "stop",
                    probe=not args.no_probe,
                )
                times[n].append(seconds)
                shares[n].append(share)
        _report(args, workers, times, data, shares)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _report(args, workers: int, times: dict, data: dict[int, bytes], shares: dict) -> None:
    serial, parallel = min(times[1]), min(times[workers])
    rows = [
        ("images", args.images),
        ("source", f"{args.source_size} JPEG"),
        ("cache_size", f"{args.size}x{args.size}"),
        ("cpus_usable", len(os.sched_getaffinity(0))),
        ("load_avg_1m", f"{os.getloadavg()[0]:.2f}"),
        ("serial_s", " ".join(f"{t:.2f}" for t in times[1])),
        (f"workers_{workers}_s", " ".join(f"{t:.2f}" for t in times[workers])),
        ("serial_images_per_s", f"{args.images / serial:.0f}"),
        (f"workers_{workers}_images_per_s", f"{args.images / parallel:.0f}"),
        ("speedup", f"{serial / parallel:.2f}x"),
        ("identical_bytes", data[1] == data[workers]),
        ("serial_two_runnable", _shares(shares[1])),
        (f"workers_{workers}_two_runnable", _shares(shares[workers])),
    ]
    for key, value in rows:
        print(f"{key:>26}: {value}")


def _shares(values: list[float]) -> str:
    return " ".join("-" if v != v else f"{v:.0%}" for v in values)  # NaN: not probed


if __name__ == "__main__":
    main()
