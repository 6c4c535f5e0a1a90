"""Throughput of a whole trial epoch against the model step alone (``capstudy bench trial``).

Two figures per variant and input size, measured in the same run on the same device:

* **trial**: a real trial (:func:`capstudy.engine.run_trial`) on the synthetic benchmark,
  two epochs; the second epoch's training images divided by its wall time, which holds
  everything an epoch does (memmap gather, copy, augmentation, step, in-domain validation,
  shift evaluation with COCOeval). The first epoch pays one-off costs (cache build, cuDNN
  autotuning) and is not used.
* **step**: forward, float32 FCOS loss, backward, clipping and the optimizer step on one
  batch already on the device: what the model alone allows.

Their ratio is the *pipeline efficiency*: the share of the model's speed a trial keeps.

On a GPU, :class:`PackedPool` also runs 1, 2, 4 or 8 identical training loops as separate
processes (as Ray places ``gpu: 1/n`` trials), lets them warm up, starts their timed windows
at the same instant and sums their images/s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from capstudy import keys
from capstudy.config import TrialConfig
from capstudy.engine.breakdown import eval_breakdown, eval_rates, step_timing
from capstudy.engine.device import (
    claim_gpu,
    configure_backends,
    precision_for,
    release_gpu,
    resolve_device,
)
from capstudy.engine.model import build_model, variant_of
from capstudy.engine.optim import build_optimizer
from capstudy.engine.step import make_train_step

BENCH_VARIANTS = (
    ("efficientnet_b0", 0),
    ("efficientnet_b0", -4),
    ("efficientnet_b0", -7),
    ("mobilenetv3_small", 0),
    ("mobilenetv3_small", -6),
)
TRAIN_DOMAIN = "synth_a/rgb"
# As the smoke and full studies evaluate: in-domain, RGB -> thermal, cross-dataset.
EVAL_DOMAINS = ("synth_a/rgb", "synth_a/ir", "synth_b/rgb")


# The step before the batched FCOS loss, fused optimizer and CUDA graphs: the baseline a
# bench run with ``baseline`` measures beside the configured step.
OLD_STEP = {"batched_fcos": False, "fused_optimizer": False, "cuda_graphs": False}


@dataclass(frozen=True)
class TrialBench:
    """One row of ``capstudy bench trial``.

    Attributes:
        label: Paper label (``B-4``).
        image_size: Input size in pixels.
        trial_images_per_s: Training images per second of wall time of a whole epoch
            (train + validation + shift evaluation).
        train_images_per_s: Training images per second of the epoch's training part.
        step_images_per_s: Images per second of the model step on device-resident data.
        eval_images_per_s: Images per second of a whole evaluation of the trial's splits,
            as a trial runs it (after the breakdown's evaluation has warmed it up).
        forward_images_per_s: Images per second of the validation loss pass (forward and
            loss) over the same splits.
        epoch_s: Wall time of the timed epoch.
        images: Training images in the timed epoch.
        step_ms: Milliseconds per step of each step phase (:mod:`capstudy.engine.breakdown`).
        eval_s: Seconds of each evaluation phase for one evaluation of every split.
        baseline: The old step's (``OLD_STEP``) images/s, ``step_ms`` and ``eval_s``, measured
            in the same run (empty when not asked for).
    """

    label: str
    image_size: int
    trial_images_per_s: float
    train_images_per_s: float
    step_images_per_s: float
    epoch_s: float
    images: int
    eval_images_per_s: float = 0.0
    forward_images_per_s: float = 0.0
    step_ms: dict[str, float] = field(default_factory=dict)
    eval_s: dict[str, float] = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)

    @property
    def efficiency(self) -> float:
        """Pipeline efficiency: whole-epoch images/s over model-step images/s."""
        return self.trial_images_per_s / self.step_images_per_s

    @property
    def step_speedup(self) -> float | None:
        """Step images/s over the old step's, when the baseline was measured."""
        old = self.baseline.get("step_images_per_s")
        return self.step_images_per_s / old if old else None


def bench_config(
    family: str, phi: int, image_size: int, *, device: str, images: int, **changes
) -> TrialConfig:
    """The benchmark's trial: random init, synth_a/rgb, evaluated as a study evaluates.

    Args:
        family: Backbone family.
        phi: Scaling step.
        image_size: Square input size.
        device: auto | cpu | cuda.
        images: Training images per epoch; each evaluated domain gets a quarter as many.
        **changes: Other TrialConfig fields (batch_size, threads, amp, ...).
    """
    values = dict(
        family=family,
        phi=phi,
        image_size=image_size,
        device=device,
        epochs=2,
        train_domain=TRAIN_DOMAIN,
        eval_domains=list(EVAL_DOMAINS),
        max_train_images=images,
        max_eval_images=max(1, images // 4),
    )
    return TrialConfig.from_dict({**values, **changes}, source="bench trial")


def trial_throughput(
    config: TrialConfig, step_seconds: float = 2.0, baseline: bool = False
) -> TrialBench:
    """Time ``config``'s trial epoch, its model step and both breakdowns.

    Args:
        config: The benchmark trial (see :func:`bench_config`).
        step_seconds: Timed window of the step.
        baseline: Also time the old step and evaluation (``OLD_STEP``) in this run.
    """
    from capstudy.engine.datasets import open_trial_data
    from capstudy.engine.trial import run_trial

    result = run_trial(config)
    timed = result.history[-1]
    images = min(config.max_train_images or 10**9, _train_size(config))
    data = open_trial_data(config)
    splits = {"val": data.val, **data.evals}
    step = step_timing(config, seconds=step_seconds)
    eval_s = eval_breakdown(result.model, splits, config)
    rates = eval_rates(result.model, splits, config)
    old = {}
    if baseline:
        old_config = config.replace(**OLD_STEP)
        old_step = step_timing(old_config, seconds=step_seconds)
        old = {
            "step_images_per_s": old_step.images_per_s,
            "step_ms": old_step.phases_ms,
            "eval_s": eval_breakdown(result.model, splits, old_config),
        }
    release_gpu(resolve_device(config.device))  # the step's model is gone; so is its cache
    return TrialBench(
        label=variant_of(config).label,
        image_size=config.input_size,
        trial_images_per_s=images / timed[keys.M_EPOCH_TIME],
        train_images_per_s=timed[keys.M_IMAGES_PER_S],
        step_images_per_s=step.images_per_s,
        epoch_s=timed[keys.M_EPOCH_TIME],
        images=images,
        eval_images_per_s=rates.eval_images_per_s,
        forward_images_per_s=rates.forward_images_per_s,
        step_ms=step.phases_ms,
        eval_s=eval_s,
        baseline=old,
    )


def _train_size(config: TrialConfig) -> int:
    from capstudy.data import get_split

    return len(get_split(config.train_domain, "train", config.input_size))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Window:
    """A trial's training loop (real loader, real step), built and warmed up, ready to time."""

    def __init__(self, config: TrialConfig, share: float | None) -> None:
        from capstudy.engine.datasets import open_trial_data
        from capstudy.engine.trial import train_loader

        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.device = resolve_device(config.device)
        precision = precision_for(self.device, config.amp)
        configure_backends(self.device, config.deterministic)
        claim_gpu(self.device, share)
        data = open_trial_data(config)
        model = build_model(config, variant_of(config), data.num_classes).to(self.device)
        if precision.channels_last:
            model.to(memory_format=torch.channels_last)
        model.train()
        optimizer = build_optimizer(model, config)
        loader = train_loader(data.train, config, self.device)
        slots = max((len(b) for b in data.train.boxes), default=1)
        step = make_train_step(model, optimizer, precision, config, slots)

        def steps():
            while True:
                for images, targets in loader:
                    step(images, targets)
                    yield len(images)

        self._steps = steps()
        for _ in range(3):  # allocator, cuDNN autotuning, the prefetch thread's start
            next(self._steps)
        _sync(self.device)

    def timed(self, seconds: float, start_at: float | None = None) -> float:
        """Images/s over ``seconds`` (from wall-clock ``start_at`` when given)."""
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
        done, tic = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - tic < seconds:
            done += next(self._steps)
        _sync(self.device)
        rate = done / (time.perf_counter() - tic)
        self._steps.close()
        return rate


def train_window(config: TrialConfig, seconds: float, share: float | None = None) -> float:
    """Images/s of ``config``'s training loop, real input path included, over a window."""
    return _Window(config, share).timed(seconds)


def _pool_worker(index: int, inbox, outbox) -> None:
    """A packed-trial process: build a loop per request, report ready, time it on cue."""
    while (request := inbox.get()) is not None:
        config_dict, seconds, share = request
        window = None
        try:
            window = _Window(TrialConfig.from_dict(config_dict), share)
            outbox.put((index, "ready", None))
            outbox.put((index, "rate", window.timed(seconds, start_at=inbox.get())))
        except BaseException as exc:
            outbox.put((index, "error", f"{type(exc).__name__}: {exc}"))
        finally:
            del window
            release_gpu(torch.device("cuda"))


class PackedPool:
    """Up to ``size`` spawned processes that run packed trials together, reused across rows.

    Spawning a process costs seconds of imports (CUDA cannot be forked), more than a timed
    window; the pool pays it once. Each request builds a fresh model and loader in the first
    ``trials`` processes with a ``1/trials`` memory share, as Ray runs trials with
    ``gpu: 1/trials``; their windows start together at one wall-clock instant.
    """

    def __init__(self, size: int) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError("packed GPU throughput needs a CUDA GPU")
        ctx = torch.multiprocessing.get_context("spawn")
        self._outbox = ctx.Queue()
        self._inboxes = [ctx.Queue() for _ in range(size)]
        self._procs = [
            ctx.Process(target=_pool_worker, args=(i, inbox, self._outbox), daemon=True)
            for i, inbox in enumerate(self._inboxes)
        ]
        for p in self._procs:
            p.start()

    def __enter__(self) -> PackedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()

    def throughput(self, config: TrialConfig, trials: int, seconds: float = 3.0) -> float:
        """Aggregate training images/s of ``trials`` identical trials sharing the GPU.

        Raises:
            RuntimeError: A packed process failed (its first error is named).
        """
        if not 1 <= trials <= len(self._inboxes):
            raise ValueError(f"trials must be 1..{len(self._inboxes)}, not {trials}")
        values = config.replace(device="cuda").to_dict()
        for inbox in self._inboxes[:trials]:
            inbox.put((values, seconds, 1 / trials))
        first = [self._outbox.get() for _ in range(trials)]
        ready = [i for i, kind, _ in first if kind == "ready"]
        start_at = time.time() + 0.5  # every ready process sleeps until the same instant
        for i in ready:
            self._inboxes[i].put(start_at)
        replies = [r for r in first if r[1] == "error"] + [self._outbox.get() for _ in ready]
        errors = [detail for _, kind, detail in replies if kind == "error"]
        if errors:
            raise RuntimeError(f"{len(errors)} of {trials} packed trials failed: {errors[0]}")
        return float(sum(detail for _, _, detail in replies))
