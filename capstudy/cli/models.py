"""``capstudy models``: the table of every variant and its capacity."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from capstudy.errors import CapstudyError


def variant_rows(
    preset: str, num_classes: int, head_width: int, image_size: int = 224
) -> list[dict]:
    """One row per variant: label, multipliers, the input size trials train at, capacity.

    The input size is ``image_size`` scaled by the variant's resolution relative to 224
    (:attr:`capstudy.config.TrialConfig.input_size`); MACs are counted at it.
    """
    from capstudy.backbones import build_trunk, channel_divisor
    from capstudy.capacity import count_macs, count_params
    from capstudy.heads import build_detector
    from capstudy.scaling import BASE_RESOLUTION, round_resolution
    from capstudy.variants import all_variants

    rows = []
    for v in all_variants(preset):
        trunk = build_trunk(v)
        res = round_resolution(image_size * v.scale.resolution / BASE_RESOLUTION)
        detector = build_detector(v, num_classes, res, head_width=head_width)
        rows.append(
            {
                "label": v.label,
                "family": v.family,
                "phi": v.phi,
                "preset": v.preset,
                "width_mult": round(v.scale.width, 4),
                "depth_mult": round(v.scale.depth, 4),
                "resolution": v.scale.resolution,
                "input_size": res,
                "channel_divisor": channel_divisor(v),
                "backbone_params": count_params(trunk),
                "detector_params": count_params(detector),
                "macs": count_macs(trunk, res),
            }
        )
    return rows


def register(app: typer.Typer) -> None:
    """Add ``capstudy models``."""

    @app.command("models")
    def models(
        preset: Annotated[
            str, typer.Option(help="Scaling preset: ultrasmall | efficientnet.")
        ] = "ultrasmall",
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
        num_classes: Annotated[int, typer.Option(help="Classes of the default detector.")] = 3,
        head_width: Annotated[int, typer.Option(help="FPN/head width of the detector.")] = 16,
        image_size: Annotated[
            int,
            typer.Option(help="The study's image_size; each variant's input size scales with it."),
        ] = 224,
    ) -> None:
        """List every variant: multipliers, resolution, parameters and MACs.

        Backbone params count the features-only trunk; detector params the whole FCOS model
        (trunk + FPN + head, default head); MACs are the trunk's at the input size trials of
        that variant train at (``--image-size`` scaled by the variant's resolution / 224).
        """
        from capstudy.scaling import PRESETS

        if preset not in PRESETS:
            raise CapstudyError(f"--preset {preset!r} is unknown; choose one of {sorted(PRESETS)}")
        rows = variant_rows(preset, num_classes, head_width, image_size)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"capstudy variants (preset {preset})")
        for col in (
            "label",
            "family",
            "phi",
            "width",
            "depth",
            "input",
            "backbone",
            "detector",
            "MMACs",
        ):
            table.add_column(col, justify="left" if col in ("label", "family") else "right")
        for r in rows:
            table.add_row(
                r["label"],
                r["family"],
                str(r["phi"]),
                f"{r['width_mult']:.3f}",
                f"{r['depth_mult']:.3f}",
                str(r["input_size"]),
                f"{r['backbone_params']:,}",
                f"{r['detector_params']:,}",
                f"{r['macs'] / 1e6:.1f}",
            )
        Console(width=max(Console().width, 110)).print(table)
