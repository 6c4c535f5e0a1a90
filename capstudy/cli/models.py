"""``capstudy models``: the table of every variant and its capacity."""

from __future__ import annotations

import json

import typer

from capstudy.errors import CapstudyError


def variant_rows(preset: str, num_classes: int, head_width: int) -> list[dict]:
    """One row per variant: label, multipliers, resolution and capacity three ways."""
    from capstudy.backbones import build_trunk, channel_divisor
    from capstudy.capacity import count_macs, count_params
    from capstudy.heads import build_detector
    from capstudy.variants import all_variants

    rows = []
    for v in all_variants(preset):
        trunk = build_trunk(v)
        res = v.scale.resolution
        detector = build_detector(v, num_classes, res, head_width=head_width)
        rows.append(
            {
                "label": v.label,
                "family": v.family,
                "phi": v.phi,
                "preset": v.preset,
                "width_mult": round(v.scale.width, 4),
                "depth_mult": round(v.scale.depth, 4),
                "resolution": res,
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
        preset: str = typer.Option("ultrasmall", help="Scaling preset: ultrasmall | efficientnet."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        num_classes: int = typer.Option(3, help="Classes of the default detector."),
        head_width: int = typer.Option(16, help="FPN/head width of the detector."),
    ) -> None:
        """List every variant: multipliers, resolution, parameters and MACs.

        Backbone params count the features-only trunk; detector params the whole FCOS model
        (trunk + FPN + head, default head); MACs are the trunk's at the variant's resolution.
        """
        from capstudy.scaling import PRESETS

        if preset not in PRESETS:
            raise CapstudyError(f"--preset {preset!r} is unknown; choose one of {sorted(PRESETS)}")
        rows = variant_rows(preset, num_classes, head_width)
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
            "res",
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
                str(r["resolution"]),
                f"{r['backbone_params']:,}",
                f"{r['detector_params']:,}",
                f"{r['macs'] / 1e6:.1f}",
            )
        Console(width=max(Console().width, 110)).print(table)
