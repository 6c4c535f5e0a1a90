"""What a study will cost, before it runs (pure: stdlib only).

``capstudy launch --dry-run`` prints :func:`cost_lines`: device-hours (GPU-hours, or CPU
core-hours for a CPU study) and the wall time on a given number of devices, counted from the
plan: every cell's ASHA trial-epochs x (training images + evaluation images on every domain when
``shift_eval`` / ``eval_every`` / ``val_eval`` make them due + the validation loss pass of
``val_eval: rungs``), plus the pretraining still needed, each at the variant's throughput.

Throughput comes from ``$CAPSTUDY_HOME/bench/<machine-id>.json`` when a benchmark
(``capstudy bench trial``) has written it through :func:`save_bench`; the file is::

    {"machine": "<host>-<device>", "device": "cpu" | "cuda", "measured": "<ISO time>",
     "entries": [{"family": "efficientnet_b0", "phi": -4, "label": "B-4",
                  "image_size": 256, "batch_size": 16,
                  "train_images_per_s": 16.7, "eval_images_per_s": 50.1,
                  "forward_images_per_s": 50.1}, ...]}

with images/s per device (one GPU, or one CPU core): ``eval`` for an evaluation with its
post-processing and mAP, ``forward`` for the validation loss pass (forward and loss only); both
optional. Without it, :data:`ROUGH_MODEL` stands in, and the output says so and how to measure.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from capstudy import paths
from capstudy.config import TrialConfig, checkpoint_due, shift_eval_due, val_map_due
from capstudy.recipes import FINETUNE_CLASSIFICATION, FINETUNE_DETECTION
from capstudy.study.plan import Plan, asha_rungs, asha_stops, cell_capacity

# Rough model, CPU: training images/s on one core at 256 px, batch 16 (measured with the
# former `capstudy bench train` on this project's 2-core machine): family -> {phi: images/s};
# other phis interpolate in log speed, other sizes scale with pixel count.
ROUGH_CPU = {
    "efficientnet_b0": {0: 3.1, -4: 16.7, -7: 17.2},
    "mobilenetv3_small": {0: 21.2, -6: 65.0},
}
# Rough model, GPU: a guess, not a measurement — small detectors on one modern GPU are bound by
# input handling, so one figure for every variant (256 px). Replace it by measuring.
ROUGH_GPU_IMAGES_PER_S = 400.0
# A forward pass without backward and optimizer: about 3x training speed; the rough model prices
# the validation loss pass of `val_eval: rungs` (forward + loss) so. A whole evaluation adds
# post-processing (threshold, top-k, NMS) and COCOeval: `capstudy bench trial` on one CPU core
# at 256 px measured it 1.0-1.3x slower than the loss pass (B0 1.0, B-7 1.2, S-6 1.3), so the
# rough model prices it at the loss pass's speed / 1.25.
FORWARD_SPEEDUP = 3.0
EVAL_SPEEDUP = FORWARD_SPEEDUP / 1.25
ROUGH_SIZE = 256
ROUGH_MODEL = (
    "rough model: CPU images/s per core measured on a 2-core machine at 256 px (B0 3.1, B-4 "
    f"16.7, S-0 21.2, S-6 65.0), GPU {ROUGH_GPU_IMAGES_PER_S:g} images/s per GPU for every "
    f"variant (a guess), the validation loss pass {FORWARD_SPEEDUP:g}x and an evaluation "
    f"{EVAL_SPEEDUP:g}x faster than training, speed scaling with pixel count"
)
# Published train / val image counts (synthetic: the shipped sizes). Unknown datasets: 1000.
DATASET_IMAGES = {
    "synth_a": (400, 100),
    "synth_b": (400, 100),
    "synth_coco": (600, 100),
    "synth_imagenet": (4800, 960),
    "flir": (4129, 1013),
    "flir_v2": (10742, 1144),
    "llvip": (12025, 3463),
    "coco": (118287, 5000),
    "imagenet": (1281167, 50000),
}
UNKNOWN_DATASET_IMAGES = (1000, 250)
DEFAULT_TRAIN = TrialConfig.train_domain
# Split sizes counted in the local data: domain -> (train, eval) images (capstudy.data.counts).
Counts = Mapping[str, tuple[int, int]] | None


def machine_id(device: str = "cpu") -> str:
    """``<host>-<device>``: bench results belong to one machine and device kind."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{socket.gethostname()}-{device}")


def bench_path(device: str = "cpu") -> Path:
    """Where this machine's throughput measurements for ``device`` live."""
    return paths.home() / "bench" / f"{machine_id(device)}.json"


def save_bench(entries: list[dict], device: str = "cpu") -> Path:
    """Write (merge) measured throughput; entries as in the module docstring.

    Entries replace earlier ones of the same family, phi (or label) and image size.
    """
    path = bench_path(device)
    old = load_bench(device) or {"entries": []}
    merged = {_entry_key(e): e for e in old["entries"]}
    merged.update({_entry_key(e): e for e in entries})
    doc = {
        "machine": machine_id(device),
        "device": device,
        "measured": dt.datetime.now().isoformat(timespec="seconds"),
        "entries": list(merged.values()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)  # readers never see half a file
    return path


def _entry_key(entry: dict) -> tuple:
    return entry.get("family"), entry.get("phi", entry.get("label")), entry.get("image_size")


def load_bench(device: str = "cpu") -> dict | None:
    """This machine's measurements for ``device``, or None."""
    try:
        doc = json.loads(bench_path(device).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc.get("entries"), list) else None


@dataclass(frozen=True)
class Speed:
    """Images/s per device for one variant at one size, and where the figure came from.

    ``forward``: the validation loss pass of ``val_eval: rungs`` (forward and loss only).
    """

    train: float
    eval: float
    forward: float
    measured: bool


def _rough_cpu(family: str, phi: int) -> float:
    anchors = ROUGH_CPU.get(family) or ROUGH_CPU["efficientnet_b0"]
    points = sorted(anchors.items())
    if phi <= points[0][0]:
        return points[0][1]
    if phi >= points[-1][0]:
        return points[-1][1]
    for (p0, v0), (p1, v1) in zip(points, points[1:], strict=False):
        if p0 <= phi <= p1:
            t = (phi - p0) / (p1 - p0)
            return math.exp(math.log(v0) + t * (math.log(v1) - math.log(v0)))
    return points[-1][1]


def variant_speed(family: str, phi: int, label: str, size: int, gpu: bool, bench) -> Speed:
    """Throughput of a variant at ``size``: measured when the bench has it, else rough."""
    for e in (bench or {}).get("entries", []):
        if e.get("family") == family and (e.get("phi") == phi or e.get("label") == label):
            scale = (float(e.get("image_size", size)) / size) ** 2
            train = float(e["train_images_per_s"]) * scale
            ev = float(e.get("eval_images_per_s") or train * EVAL_SPEEDUP / scale) * scale
            fwd = float(e.get("forward_images_per_s") or train * FORWARD_SPEEDUP / scale) * scale
            return Speed(train, ev, fwd, True)
    base = ROUGH_GPU_IMAGES_PER_S if gpu else _rough_cpu(family, phi)
    train = base * (ROUGH_SIZE / size) ** 2
    return Speed(train, train * EVAL_SPEEDUP, train * FORWARD_SPEEDUP, False)


def _phi(values: dict) -> int:
    """The variant's step; a free width maps to the ultrasmall step of the same width
    (width = 1.46**phi), so the rough model interpolates free variants by size too."""
    if "width" in values:
        return round(math.log(float(values["width"])) / math.log(1.46))
    return int(values.get("phi", 0))


def _images(domain: str, split: int, cap: int, counts: Counts = None) -> int:
    """Images of a published split (0 train, 1 eval): counted here when ``counts`` has the
    domain (``capstudy.data.counts``), else the published size; capped by ``cap``."""
    dataset = domain.split("/", 1)[0]
    n = (counts or {}).get(domain) or DATASET_IMAGES.get(dataset, UNKNOWN_DATASET_IMAGES)
    return min(n[split], cap) if cap else n[split]


@dataclass(frozen=True)
class Volume:
    """Images a study trains and evaluates, and the checkpoints it writes (ASHA estimate)."""

    train: float = 0.0
    val: float = 0.0  # the held-out in-domain subset, on the epochs with val/* mAP
    shift: float = 0.0  # the published evaluation splits of every domain
    checkpoints: float = 0.0
    val_loss: float = 0.0  # the held-out subset's loss pass (val_eval: rungs), epochs without mAP

    def __add__(self, other: Volume) -> Volume:
        return Volume(*(a + b for a, b in zip(vars(self).values(), vars(other).values())))

    def __mul__(self, n: float) -> Volume:
        return Volume(*(n * a for a in vars(self).values()))

    @property
    def evaluated(self) -> float:
        """Every image evaluated (mAP or top-1); the loss pass is ``val_loss``."""
        return self.val + self.shift


@dataclass(frozen=True)
class Estimate:
    """Device-seconds of a plan, split by part, and how many variants were measured.

    ``volume`` counts with the study's ``checkpoint_every`` / ``eval_every`` /
    ``shift_eval``; ``every_epoch`` as if every epoch checkpointed and evaluated everything.
    """

    train_s: float
    eval_s: float
    pretrain_s: float
    measured: int
    rough: int
    gpu: bool
    volume: Volume = Volume()
    every_epoch: Volume = Volume()

    @property
    def total_s(self) -> float:
        """All device-seconds."""
        return self.train_s + self.eval_s + self.pretrain_s


_DEFAULTS = {f: getattr(TrialConfig, f) for f in ("val_fraction", "checkpoint_every")}
_DEFAULTS |= {f: getattr(TrialConfig, f) for f in ("eval_every", "shift_eval", "val_eval")}


def trial_volume(
    v: dict, epochs_run: int, max_t: int, rungs: tuple, domains: set, counts: Counts = None
) -> Volume:
    """Images and checkpoints of one trial of settings ``v`` stopped after ``epochs_run``
    (split sizes from ``counts`` where it has the domain, else published)."""
    v = {**_DEFAULTS, **v}
    whole = _images(str(v["train"]), 0, 0, counts)
    n_val = round(whole * float(v["val_fraction"]))
    n_val = min(n_val, int(v.get("max_eval_images", 0) or n_val))
    n_train = _images(str(v["train"]), 0, int(v.get("max_train_images", 0) or 0), counts)
    n_train = min(n_train, whole - n_val)
    cap = int(v.get("max_eval_images", 0) or 0)
    n_shift = sum(_images(d, 1, cap, counts) for d in domains)
    mode, every = str(v["shift_eval"]), int(v["eval_every"])
    epochs = range(1, epochs_run + 1)
    shifts = sum(shift_eval_due(e, max_t, mode, every, rungs) for e in epochs)
    maps = sum(val_map_due(e, max_t, str(v["val_eval"]), rungs) for e in epochs)
    # val_eval: rungs takes val/loss from the mAP's own forward on the mAP epochs and runs a
    # forward-and-loss pass on the others (the engine's _evaluate_all).
    losses = epochs_run - maps if v["val_eval"] == "rungs" else 0
    ckpts = sum(checkpoint_due(e, max_t, int(v["checkpoint_every"]), rungs) for e in epochs)
    return Volume(
        train=epochs_run * n_train,
        val=maps * n_val,
        shift=shifts * n_shift,
        checkpoints=ckpts,
        val_loss=losses * n_val,
    )


# What ``Estimate.every_epoch`` counts with: every epoch evaluates everything and checkpoints.
_EVERY_EPOCH = {"checkpoint_every": 1, "eval_every": 1, "shift_eval": "every", "val_eval": "every"}


def study_domains(p: Plan) -> set[str]:
    """Every domain the trials read: each cell's train domain and the evaluation domains."""
    trains = {str({"train": DEFAULT_TRAIN, **p.spec.fixed, **c.values}["train"]) for c in p.cells}
    return trains | set(p.spec.evaluate)


def estimate(p: Plan, bench: dict | None = None, counts: Counts = None) -> Estimate:
    """Device-seconds of a planned study (ASHA estimate; pretraining still needed); split
    sizes from ``counts`` (domain -> (train, eval) images) where given, else published."""
    spec = p.spec
    gpu = spec.resources.gpu > 0
    recipe = FINETUNE_DETECTION if spec.task == "detection" else FINETUNE_CLASSIFICATION
    asha = spec.tune.asha
    rungs = tuple(asha_rungs(asha.grace, asha.reduction, asha.max_t))
    stops = asha_stops(spec.tune.samples_per_cell, asha.grace, asha.reduction, asha.max_t)
    if asha.scope != "cell":  # global ASHA: the plan's study-wide estimate, spread evenly
        share = p.trial_epochs_asha / max(len(p.cells), 1) / spec.tune.samples_per_cell
        stops = [(round(share), spec.tune.samples_per_cell)]
    train_s = eval_s = 0.0
    volume = every_epoch = Volume()
    measured, rough = set(), set()
    for cell in p.cells:
        v = {"train": DEFAULT_TRAIN, **recipe, **spec.fixed, **cell.values}
        family, _, label = cell_capacity(spec, cell)
        speed = variant_speed(family, _phi(v), label, int(v["image_size"]), gpu, bench)
        (measured if speed.measured else rough).add(label)
        domains = set(spec.evaluate) | {str(v["train"])}
        plain = {**v, **_EVERY_EPOCH}
        for epochs_run, n in stops:
            vol = trial_volume(v, epochs_run, asha.max_t, rungs, domains, counts)
            base = trial_volume(plain, epochs_run, asha.max_t, rungs, domains, counts)
            volume = volume + vol * n
            every_epoch = every_epoch + base * n
            train_s += n * vol.train / speed.train
            eval_s += n * (vol.evaluated / speed.eval + vol.val_loss / speed.forward)
    pretrain_s = 0.0
    for need in p.pretrain_needed:
        dataset = getattr(spec.pretrain, need.stage)
        size = int(getattr(spec.pretrain, f"image_size_{need.stage}"))
        phi = need.capacity if isinstance(need.capacity, int) else 0
        speed = variant_speed(need.family, phi, need.label, size, gpu, bench)
        n = DATASET_IMAGES.get(dataset, UNKNOWN_DATASET_IMAGES)[0]
        cap = spec.pretrain.max_train_images
        pretrain_s += spec.pretrain.epochs(need.stage) * (min(n, cap) if cap else n) / speed.train
    return Estimate(
        train_s, eval_s, pretrain_s, len(measured), len(rough), gpu, volume, every_epoch
    )


def volume_lines(est: Estimate, spec) -> str:
    """Images trained and evaluated, and checkpoints, with the study's settings and without."""
    f = {**_DEFAULTS, **spec.fixed}
    vol, base = est.volume, est.every_epoch
    settings = ", ".join(f"{k}={f[k]}" for k in _EVERY_EPOCH)
    when = "every epoch" if f["val_eval"] == "every" else "at the rungs and the end"
    loss = f", its loss pass {_count(vol.val_loss)} on the other epochs" if vol.val_loss else ""
    first = (
        f"images (ASHA estimate): trained {_count(vol.train)}; evaluated "
        f"{_count(vol.evaluated)} (held-out val {_count(vol.val)} {when}{loss}, shift domains "
        f"{_count(vol.shift)}); {_count(vol.checkpoints)} checkpoints  [{settings}]"
    )
    passes = _ratio(vol.evaluated + vol.val_loss, base.evaluated)
    with_loss = f" ({passes} with the loss pass)" if vol.val_loss else ""
    if vol == base:
        return first + (
            "\n  every epoch evaluates and checkpoints: the keys in brackets, set in `fixed`, "
            "cut both (docs/reference/study-files.md, Trial keys)"
        )
    return (
        f"{first}\n  every epoch instead: evaluated {_count(base.evaluated)} (shift domains "
        f"{_count(base.shift)}), {_count(base.checkpoints)} checkpoints; these settings "
        f"evaluate {_ratio(vol.evaluated, base.evaluated)} of that{with_loss} and write "
        f"{_ratio(vol.checkpoints, base.checkpoints)} of the checkpoints"
    )


def _count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f}"


def _ratio(a: float, b: float) -> str:
    return f"{100 * a / b:.0f}%" if b else "n/a"


def _amount(hours: float) -> str:
    """Three significant digits, without an exponent for thousands (1,210 not 1.21e+03)."""
    return f"{hours:,.0f}" if hours >= 1000 else f"{hours:.3g}"


def cost_lines(p: Plan, devices: int | None = None, bench: dict | None = None) -> str:
    """The cost part of ``--dry-run``: device-hours, wall time on ``devices``, the source."""
    gpu = p.spec.resources.gpu > 0
    bench = bench if bench is not None else load_bench("cuda" if gpu else "cpu")
    from capstudy.data.counts import count_domains, notes, source_line

    local = count_domains(study_domains(p), p.spec.data)
    est = estimate(p, bench, local.images)
    unit = "GPU-hours" if gpu else "CPU core-hours"
    devices = devices or (1 if gpu else (os.cpu_count() or 1))
    kind = "GPU" if gpu else "core"
    wall = est.total_s / devices
    lines = [
        volume_lines(est, p.spec),
        source_line(local),
        f"cost: ≈{_amount(est.total_s / 3600)} {unit} (training "
        f"{_amount(est.train_s / 3600)}, evaluation {_amount(est.eval_s / 3600)}, "
        f"pretraining {_amount(est.pretrain_s / 3600)}); "
        f"wall ≈{_hours(wall)} on {devices} {kind}{'s' if devices != 1 else ''} "
        "(perfect packing; --devices N for another count)",
    ]
    if est.rough:
        how = "`capstudy bench trial`" + (" on a machine with the study's GPU" if gpu else " here")
        lines.append(
            f"  throughput: {est.measured} variants measured, {est.rough} from the {ROUGH_MODEL}. "
            f"Measure with {how} (cached in {bench_path('cuda' if gpu else 'cpu')})"
        )
    else:
        lines.append(
            f"  throughput: measured on this machine ({bench_path('cuda' if gpu else 'cpu')})"
        )
    return "\n".join(lines + notes(local))


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{_amount(seconds / 3600)} h"
