"""Capacity, counted three ways, each defined here and nowhere else.

* ``backbone_params``: trainable parameters of the features-only trunk (timm
  ``features_only=True`` over all five stride levels: stem and every block, no ``conv_head``
  and no classifier). This is the paper's capacity axis: what pretraining initialises.
* ``detector_params``: every parameter of the model the trial trains (trunk + FPN + head,
  or trunk + linear classifier): what must fit on the device.
* ``macs``: multiply-accumulates of the *trunk* for one image at the trial's input size,
  counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
  products; 1 MAC = 2 FLOPs; element-wise activations, norms and pooling are not counted,
  as in the usual "FLOPs" tables of EfficientNet/MobileNet papers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from capstudy.backbones import build_trunk
from capstudy.variants import Variant

CAPACITY_CONVENTION = (
    "backbone_params=features-only trunk params; detector_params=all params of the trained "
    "model; macs=trunk MACs for one image at the input size (FlopCounterMode/2)"
)


def count_params(module: nn.Module) -> int:
    """Number of parameters of a module (all of them: capstudy trains everything)."""
    return sum(p.numel() for p in module.parameters())


def free_backbone_params(family: str, width: float, depth: float) -> int:
    """Backbone parameters of a free-scale variant, measured by building its trunk.

    Preset variants are looked up in the golden counts; a free ``(width, depth)`` pair has
    none, so the power analysis counts it with this.
    """
    from capstudy.scaling import free_scale
    from capstudy.variants import free_variant

    return count_params(build_trunk(free_variant(family, free_scale(width, depth))))


@torch.no_grad()
def count_macs(module: nn.Module, image_size: int) -> int:
    """MACs of ``module`` on one ``3 x image_size x image_size`` image (see module doc)."""
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter:
        module(torch.zeros(1, 3, image_size, image_size, device=device))
    module.train(was_training)
    return counter.get_total_flops() // 2


@dataclass(frozen=True)
class Capacity:
    """Capacity of one trial's model.

    Attributes:
        backbone_params: Trunk parameters.
        detector_params: Parameters of the whole trained model.
        macs: Trunk MACs at the input size.
    """

    backbone_params: int
    detector_params: int
    macs: int


def variant_capacity(variant: Variant, model: nn.Module, image_size: int) -> Capacity:
    """Capacity of ``model`` built on ``variant``, at ``image_size``.

    The trunk is built afresh (all five levels) so the backbone count does not depend on
    which levels a head happens to consume.
    """
    trunk = build_trunk(variant)
    return Capacity(
        backbone_params=count_params(trunk),
        detector_params=count_params(model),
        macs=count_macs(trunk, image_size),
    )
