"""The frozen, typed configuration of one trial (pure module).

A study file's ``fixed`` values, one grid cell and one HPO sample merge into a plain dict;
:meth:`TrialConfig.from_dict` turns it into this frozen dataclass, rejecting unknown keys
and wrong types with a message that names the key. Defaults come from
:mod:`capstudy.recipes`, so a config states only what it changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from capstudy.errors import CapstudyError
from capstudy.recipes import FINETUNE_DETECTION, recipe
from capstudy.scaling import BASE_RESOLUTION, PRESETS, compound_scale, round_resolution

INIT_CHOICES = ("random", "imagenet", "imagenet_coco")  # or a local checkpoint path
TASKS = ("detection", "classification")


SHIFT_EVAL = ("every", "rungs", "final")
VAL_EVAL = ("every", "rungs")


class ConfigError(CapstudyError, ValueError):
    """A trial config key or value is wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs; hashable and JSON-serialisable.

    Capacity axis: ``family`` + ``phi`` under ``preset``, or a free triple when ``width`` and
    ``depth`` are set (then ``phi`` is ignored and ``preset`` is ``"free"``).
    """

    family: str = "efficientnet_b0"
    phi: int = 0
    preset: str = "ultrasmall"
    width: float | None = None
    depth: float | None = None
    resolution: int | None = None
    task: str = "detection"
    init: str = "random"
    train_domain: str = "synth_a/rgb"
    eval_domains: tuple[str, ...] = ()
    seed: int = 0
    epochs: int = FINETUNE_DETECTION["epochs"]
    image_size: int = FINETUNE_DETECTION["image_size"]
    batch_size: int = FINETUNE_DETECTION["batch_size"]
    optimizer: str = FINETUNE_DETECTION["optimizer"]
    lr: float = FINETUNE_DETECTION["lr"]
    weight_decay: float = FINETUNE_DETECTION["weight_decay"]
    schedule: str = FINETUNE_DETECTION["schedule"]
    warmup_epochs: int = FINETUNE_DETECTION["warmup_epochs"]
    augment: bool = FINETUNE_DETECTION["augment"]
    head_width: int = FINETUNE_DETECTION["head_width"]
    head_convs: int = FINETUNE_DETECTION["head_convs"]
    label_smoothing: float = 0.0
    # Cap on training images per epoch (0 = all): lets smoke studies and tests stay fast.
    max_train_images: int = 0
    max_eval_images: int = 0
    # Share of the train domain's training split held out, by a hash of image ids (not the
    # seed), as the validation subset that ASHA and selection read (``val/*``). The published
    # evaluation split of every domain is reported as ``eval/<domain>/*`` and never selects.
    # 0.1: see docs/guide/data.md, "Held-out validation".
    val_fraction: float = 0.1
    # dataset name -> comma-separated classes it annotates, overriding the declaration in
    # capstudy.data.domains (for a real dataset folder that labels fewer classes).
    dataset_classes: tuple[tuple[str, str], ...] = ()
    # "auto" = cuda when available, else cpu. AMP and channels_last apply on cuda only.
    device: str = "auto"
    amp: bool = True
    # True: cuDNN deterministic algorithms, no autotuning, deterministic torch kernels where
    # they exist, so a GPU run (and its resume) repeats exactly. False favours speed. CPU
    # runs repeat exactly either way.
    deterministic: bool = False
    # Torch intra-op threads for this trial (0 = leave torch's default). Ray sets it to the
    # trial's CPU share, since two 1-CPU trials beat one 2-CPU trial on small models.
    threads: int = 0
    # Less waste per trial. A checkpoint (model + optimizer + RNG, which Ray then
    # copies to storage) every `checkpoint_every` epochs, and always at ASHA rungs and the end,
    # where a trial can stop. Shift domains are evaluated every `eval_every` epochs ("every"),
    # only at rungs and the end ("rungs"), or only at the end ("final"): ASHA and selection
    # read only the in-domain val/* metrics, which run every epoch; the analysis reads the
    # final values. `rungs` (epochs) is set by the launcher from the study's ASHA settings.
    checkpoint_every: int = 1
    eval_every: int = 1
    shift_eval: str = "every"
    rungs: tuple[int, ...] = ()
    # val/* mAP every epoch ("every"), or only at the ASHA rungs and the end ("rungs", the
    # only epochs where it decides anything; the other epochs report val/loss and NaN val/*).
    val_eval: str = "every"
    # The training step. batched_fcos: FCOS loss and post-processing for the whole batch at
    # once (equal to torchvision's per-image code; False runs torchvision's). On CUDA only:
    # fused_optimizer (AdamW/SGD in one kernel) and cuda_graphs (the step captured once and
    # replayed; needs bfloat16 or float32, not float16 loss scaling).
    batched_fcos: bool = True
    fused_optimizer: bool = True
    cuda_graphs: bool = False
    # dataset name -> local folder, for real datasets outside $CAPSTUDY_HOME/data.
    data_roots: tuple[tuple[str, str], ...] = ()
    # HPO dimension names (which of the fields above were sampled), for tracking.
    hpo_keys: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """All accepted keys."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> TrialConfig:
        """Build a config from plain values, with the task's recipe as defaults.

        Args:
            values: Keys of this dataclass; unknown keys are an error.
            source: What the values came from, for error messages (a file or study name).

        Raises:
            ConfigError: Unknown key, wrong type or invalid value, naming it.
        """
        known = set(cls.field_names())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown trial key(s) {unknown}; accepted keys: {sorted(known)}"
            )
        task = values.get("task", "detection")
        if task not in TASKS:
            raise ConfigError(f"{source}: task must be one of {TASKS}, got {task!r}")
        merged: dict[str, Any] = {k: v for k, v in recipe("finetune", task).items() if k in known}
        merged.update(values)
        kwargs = {
            f.name: _coerce(f, merged[f.name], source)
            for f in dataclasses.fields(cls)
            if f.name in merged
        }
        config = cls(**kwargs)
        config.validate(source)
        return config

    def validate(self, source: str = "config") -> None:
        """Check value ranges; raise :class:`ConfigError` naming the key."""
        checks = [
            ("epochs", self.epochs >= 1, "must be >= 1"),
            (
                "image_size",
                self.image_size >= 32 and self.image_size % 32 == 0,
                "must be a multiple of 32 and >= 32 (the trunk's stride is 32)",
            ),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("lr", self.lr > 0, "must be > 0"),
            ("head_width", self.head_width >= 4, "must be >= 4"),
            ("head_convs", self.head_convs >= 0, "must be >= 0"),
            (
                "val_fraction",
                0 < self.val_fraction <= 0.5,
                "must be in (0, 0.5] (a validation subset is always held out)",
            ),
            ("optimizer", self.optimizer in ("adamw", "sgd"), "must be 'adamw' or 'sgd'"),
            ("schedule", self.schedule in ("cosine", "constant"), "must be 'cosine' or 'constant'"),
            ("checkpoint_every", self.checkpoint_every >= 1, "must be >= 1"),
            ("eval_every", self.eval_every >= 1, "must be >= 1"),
            ("val_eval", self.val_eval in VAL_EVAL, f"must be one of {', '.join(VAL_EVAL)}"),
            (
                "shift_eval",
                self.shift_eval in SHIFT_EVAL,
                f"must be one of {', '.join(SHIFT_EVAL)}",
            ),
        ]
        for key, ok, why in checks:
            if not ok:
                raise ConfigError(f"{source}: {key}={getattr(self, key)!r} {why}")
        if (self.width is None) != (self.depth is None):
            raise ConfigError(f"{source}: a free scale needs both 'width' and 'depth'")

    def shift_eval_due(self, epoch: int) -> bool:
        """Whether the shift (non-train) domains are evaluated after ``epoch`` (1-based)."""
        return shift_eval_due(epoch, self.epochs, self.shift_eval, self.eval_every, self.rungs)

    def val_map_due(self, epoch: int) -> bool:
        """Whether val/* mAP is computed after ``epoch`` (1-based): every epoch, or at the
        rungs and the end (``val_eval``)."""
        return val_map_due(epoch, self.epochs, self.val_eval, self.rungs)

    def checkpoint_due(self, epoch: int) -> bool:
        """Whether a checkpoint is written after ``epoch``: every N, at rungs, at the end."""
        return checkpoint_due(epoch, self.epochs, self.checkpoint_every, self.rungs)

    @property
    def is_free_scale(self) -> bool:
        """True when the capacity axis is an explicit (width, depth, resolution) triple."""
        return self.width is not None

    @property
    def variant_resolution(self) -> int:
        """The variant's native resolution: the free triple's, or its preset step's."""
        if self.is_free_scale:
            return round_resolution(self.resolution or BASE_RESOLUTION)
        if self.preset in PRESETS and self.phi <= 0:
            return compound_scale(self.phi, self.preset).resolution
        return BASE_RESOLUTION

    @property
    def input_size(self) -> int:
        """The square size this trial trains and evaluates at.

        ``image_size`` is the study's input size for a variant of native resolution 224 (the
        base); a variant's resolution scales it: ``image_size * resolution / 224``, rounded
        to a multiple of 32. ``ultrasmall`` fixes resolution at 224, so its trials train at
        ``image_size``; under ``efficientnet`` B-4 (resolution 128) at ``image_size`` 224
        trains at 128, as EfficientNet's compound scaling prescribes; a free triple's
        ``resolution`` acts the same way. (docs/reference/capacity.md: resolution.)
        """
        return round_resolution(self.image_size * self.variant_resolution / BASE_RESOLUTION)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def config_hash(self) -> str:
        """Short stable hash of every field (the tracking tag ``capstudy.config_hash``)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, **changes: Any) -> TrialConfig:
        """Copy with some fields changed (validated)."""
        return TrialConfig.from_dict({**self.to_dict(), **changes})


def _coerce(f: dataclasses.Field, value: Any, source: str) -> Any:
    """Coerce YAML/JSON values to the field's type; reject what cannot be coerced."""
    kind = str(f.type)
    try:
        if value is None:
            if "None" in kind:
                return None
            raise TypeError("null is not allowed")
        if kind.startswith("tuple[tuple"):
            items = value.items() if isinstance(value, Mapping) else value
            return tuple((str(a), str(b)) for a, b in items)
        if kind.startswith("tuple[int"):
            return tuple(int(v) for v in ([value] if isinstance(value, int) else value))
        if kind.startswith("tuple"):
            if isinstance(value, str):
                return (value,)
            return tuple(str(v) for v in value)
        if kind.startswith("bool"):
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        if kind.startswith("int"):
            if isinstance(value, bool) or not _is_number(value) or float(value) != int(value):
                raise TypeError("expected an integer")
            return int(value)
        if kind.startswith("float"):
            if isinstance(value, bool) or not _is_number(value):
                raise TypeError("expected a number")
            return float(value)
        if kind.startswith("str"):
            if not isinstance(value, str):
                raise TypeError("expected a string")
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: key {f.name!r} has bad value {value!r}: {exc}") from None
    return value


def _is_number(value: Any) -> bool:
    """A number, or text YAML left as a string that reads as one (``1e-3``)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def shift_eval_due(epoch: int, epochs: int, mode: str, every: int, rungs: tuple) -> bool:
    """Whether a trial of ``epochs`` evaluates its shift domains after ``epoch`` (1-based),
    under ``shift_eval`` = ``mode`` and ``eval_every`` = ``every`` (the cost estimate counts
    with it too)."""
    if epoch >= epochs:
        return True  # the final values are what the analysis reads
    if mode == "rungs":
        return epoch in rungs
    return mode == "every" and epoch % every == 0


def val_map_due(epoch: int, epochs: int, mode: str, rungs: tuple) -> bool:
    """Whether a trial of ``epochs`` computes val/* mAP after ``epoch`` (1-based) under
    ``val_eval`` = ``mode``: every epoch, or at the ASHA rungs and the end (the cost estimate
    counts with it too)."""
    return mode == "every" or epoch >= epochs or epoch in rungs


def checkpoint_due(epoch: int, epochs: int, every: int, rungs: tuple) -> bool:
    """Whether a trial of ``epochs`` writes a checkpoint after ``epoch``: every ``every``
    epochs, at the ASHA rungs and at the end (where a trial can stop)."""
    return epoch >= epochs or epoch in rungs or epoch % every == 0
