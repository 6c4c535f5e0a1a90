"""Default training recipes, each value with its reason (pure module).

Like big_transfer's ``bit_hyperrule.py``: the recipe is a tiny pure function of the task and
stage, so a study file only states what it changes. Values are chosen for the small models
and short schedules capstudy runs (a few to a few dozen epochs), on CPU or one GPU.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

# Engine constants (not per-trial config keys).
# SGD momentum 0.9 with Nesterov: the standard choice whenever a study asks for SGD.
SGD_MOMENTUM = 0.9
# Clip the global gradient norm at 10: FCOS's randomly initialised head produces rare
# huge box-regression gradients in the first steps; 10 never binds once training settles.
GRAD_CLIP_NORM = 10.0

FINETUNE_DETECTION: dict[str, Any] = {
    # AdamW: robust to the very different gradient scales of a 17 k and a 3.6 M backbone,
    # which SGD's single lr handles badly without per-variant tuning.
    "optimizer": "adamw",
    # 2e-3 with AdamW: a usual starting point for small detectors on short schedules (not
    # tuned per variant; that is what a study's HPO dims inside each cell are for).
    "lr": 2.0e-3,
    # Weight decay 1e-4: mild; the smallest models underfit and need little regularisation.
    "weight_decay": 1.0e-4,
    # Cosine to zero after a linear warm-up of one epoch: warm-up keeps a randomly
    # initialised FCOS head from diverging in the first steps.
    "schedule": "cosine",
    "warmup_epochs": 1,
    "epochs": 12,
    "batch_size": 16,
    # Flip + scale jitter + photometric: the standard light detection augmentation; no
    # colour-to-grey tricks, so the RGB->thermal shift stays a real test of transfer.
    "augment": True,
    # Detection input 256x256 (image_size is one int: the engine trains on squares, as the
    # cache resizes every frame to image_size x image_size): a size the smallest models can use.
    "image_size": 256,
    # FPN/head width 16 with 2 convs per tower: neck + head of ~18-25 k parameters (measured
    # with 3 classes), about the size of the smallest backbone (B-7, 17 k) instead of ten
    # times it; width 32 would cost ~70 k.
    "head_width": 16,
    "head_convs": 2,
}

FINETUNE_CLASSIFICATION: dict[str, Any] = {
    **FINETUNE_DETECTION,
    # Classification converges faster per epoch and tolerates a larger lr.
    "lr": 3.0e-3,
    "weight_decay": 5.0e-5,
    "image_size": 96,
    "batch_size": 64,
}

PRETRAIN_IMAGENET: dict[str, Any] = {
    **FINETUNE_CLASSIFICATION,
    # Pretraining runs once per variant and is reused by every trial: worth more epochs.
    "epochs": 15,
    "image_size": 64,
    # Label smoothing 0.1: standard ImageNet practice, reduces overconfidence on proxies.
    "label_smoothing": 0.1,
    # All training images; evaluation capped at 1000: pretraining's per-epoch evaluation is a
    # sanity signal, and all 50 k ImageNet val images would cost more than an epoch of the
    # smallest models.
    "max_train_images": 0,
    "max_eval_images": 1000,
}

PRETRAIN_COCO: dict[str, Any] = {
    **FINETUNE_DETECTION,
    "epochs": 10,
    "image_size": 128,
    "max_train_images": 0,
    "max_eval_images": 1000,
}

_RECIPES = MappingProxyType(
    {
        ("finetune", "detection"): FINETUNE_DETECTION,
        ("finetune", "classification"): FINETUNE_CLASSIFICATION,
        ("pretrain", "imagenet"): PRETRAIN_IMAGENET,
        ("pretrain", "coco"): PRETRAIN_COCO,
    }
)


def recipe(stage: str, kind: str) -> dict[str, Any]:
    """A copy of the default recipe for ``stage`` (finetune/pretrain) and task or dataset.

    Raises:
        KeyError: Unknown combination, naming the known ones.
    """
    try:
        return dict(_RECIPES[(stage, kind)])
    except KeyError:
        raise KeyError(f"no recipe for {(stage, kind)}; known: {sorted(_RECIPES)}") from None


# Pretraining stages, in the order they run, and the stages each init needs: imagenet_coco
# fine-tunes the ImageNet weights on COCO detection, so it needs the imagenet stage first. An
# init's weights are those of its last stage. (The one table of stages: the plan and the
# pretraining code both read it.)
STAGES = ("imagenet", "coco")
STAGES_FOR_INIT = {"random": (), "imagenet": ("imagenet",), "imagenet_coco": ("imagenet", "coco")}
