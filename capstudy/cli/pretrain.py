"""``capstudy pretrain imagenet|coco``: make and register pretrained backbone weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from capstudy.cli.options import TrackingUri
from capstudy.errors import CapstudyError

pretrain_app = typer.Typer(
    help="Pretrain a variant (ImageNet-format classification, then COCO-format detection) "
    "and register the weights in the MLflow Model Registry.",
    no_args_is_help=True,
)

# Both stage commands take the same options (one definition each, shared).
Family = Annotated[str, typer.Option(help="Backbone family (see `capstudy models`).")]
Phi = Annotated[int, typer.Option(help="Scaling step (0, -1, ...).")]
Preset = Annotated[str, typer.Option(help="Scaling preset: ultrasmall | efficientnet.")]
Width = Annotated[
    float | None, typer.Option(help="Free width multiplier (with --depth; ignores --phi).")
]
Depth = Annotated[float | None, typer.Option(help="Free depth multiplier (with --width).")]
Data = Annotated[
    Path | None,
    typer.Option(
        help="Folder of a real dataset in the stage's format (default: the synthetic proxy)."
    ),
]
Epochs = Annotated[int | None, typer.Option(help="Epochs (default: the pretraining recipe).")]
Uri = TrackingUri
Force = Annotated[bool, typer.Option(help="Train a new version even if a matching one exists.")]


def _variant(family: str, phi: int, preset: str, width: float | None, depth: float | None):
    from capstudy.scaling import free_scale
    from capstudy.variants import free_variant, make_variant

    try:
        if (width is None) != (depth is None):
            raise ValueError("--width and --depth go together")
        if width is not None and depth is not None:
            return free_variant(family, free_scale(width, depth))
        return make_variant(family, phi, preset)
    except (KeyError, ValueError) as exc:
        raise CapstudyError(str(exc).strip("'\"")) from None


def _run(stage: str, family, phi, preset, width, depth, data, epochs, tracking_uri, force):
    import time

    from capstudy import paths
    from capstudy.pretrain import ensure_weights
    from capstudy.registry import current_version, registered_name
    from capstudy.util import console as make_console

    console = make_console()
    variant = _variant(family, phi, preset, width, depth)
    uri = tracking_uri or paths.default_tracking_uri()
    tic = time.perf_counter()
    path = ensure_weights(
        variant,
        stage,
        data=data,
        epochs=epochs,
        tracking_uri=uri,
        force=force,
        progress=True,
        say=lambda msg: console.print(f"[cyan]{msg}[/]"),
    )
    ref = current_version(registered_name(variant, stage), uri)
    console.print(f"{ref.name} version {ref.version} (run {ref.run_id})")
    console.print(f"weights: {path}")
    console.print(f"done in {time.perf_counter() - tic:.1f} s; tracking store: {uri}")


def _stage_command(stage: str, doc: str):
    """One ``capstudy pretrain <stage>`` command (both stages take the same options)."""

    def command(
        family: Family = "efficientnet_b0",
        phi: Phi = 0,
        preset: Preset = "ultrasmall",
        width: Width = None,
        depth: Depth = None,
        data: Data = None,
        epochs: Epochs = None,
        tracking_uri: Uri = None,
        force: Force = False,
    ) -> None:
        _run(stage, family, phi, preset, width, depth, data, epochs, tracking_uri, force)

    command.__doc__ = doc
    command.__name__ = stage
    return command


pretrain_app.command("imagenet")(
    _stage_command(
        "imagenet", "Classification pretraining on class-per-folder data (default synth_imagenet)."
    )
)
pretrain_app.command("coco")(
    _stage_command(
        "coco",
        "Detection pretraining on COCO-format data (default synth_coco) from imagenet weights.\n\n"
        "Starts from the same variant's imagenet weights, made first (default settings) if "
        "missing.",
    )
)


def register(app: typer.Typer) -> None:
    """Add the ``pretrain`` command group."""
    app.add_typer(pretrain_app, name="pretrain")
