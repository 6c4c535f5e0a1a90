"""``capstudy train``: one trial outside Ray, with a progress bar and an MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from capstudy.cli.options import TrackingUri
from capstudy.errors import CapstudyError

TRAIN_EXPERIMENT = "capstudy-train"  # runs made by `capstudy train` (not part of a study)


def read_config(path: Path, overrides: list[str]) -> dict[str, Any]:
    """Trial keys from a YAML file (flat mapping) with ``key=value`` overrides (YAML values).

    Raises:
        CapstudyError: Missing file, not a mapping, or an override without ``=``.
    """
    import yaml

    if not path.is_file():
        raise CapstudyError(f"--config {path}: no such file")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise CapstudyError(f"{path}: must be a mapping of trial keys (family: ..., phi: ...)")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CapstudyError(f"--set {item!r} must look like key=value (e.g. lr=0.001)")
        values[key.strip()] = yaml.safe_load(text)
    return values


def register(app: typer.Typer) -> None:
    """Add ``capstudy train``."""

    @app.command("train")
    def train(
        config: Annotated[Path, typer.Option(help="YAML file of trial keys (TrialConfig).")],
        init: Annotated[
            str | None,
            typer.Option(help="random | imagenet | imagenet_coco | PATH (overrides the file)."),
        ] = None,
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Override a key: --set lr=0.001.")
        ] = None,
        tracking_uri: TrackingUri = None,
        no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Log nothing.")] = False,
        experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = TRAIN_EXPERIMENT,
        checkpoint_dir: Annotated[
            Path | None, typer.Option(help="Write checkpoint.pt here after every epoch.")
        ] = None,
        resume: Annotated[
            Path | None, typer.Option(help="Continue from this checkpoint (file or folder).")
        ] = None,
        auto_pretrain: Annotated[
            bool, typer.Option(help="Pretrain missing init weights instead of failing.")
        ] = False,
    ) -> None:
        """Run one trial (for debugging a config), logging it as an MLflow run."""
        from capstudy.config import TrialConfig

        values = read_config(config, list(set_ or []))
        if init is not None:
            values["init"] = init
        trial = TrialConfig.from_dict(values, source=str(config))
        _train(trial, tracking_uri, no_mlflow, experiment, checkpoint_dir, resume, auto_pretrain)


def _train(config, tracking_uri, no_mlflow, experiment, checkpoint_dir, resume, auto_pretrain):
    from capstudy import paths
    from capstudy.engine import run_trial, variant_of
    from capstudy.pretrain import init_weights
    from capstudy.util import console as make_console

    console = make_console()
    uri = tracking_uri or paths.default_tracking_uri()
    init_path, ref = init_weights(config, tracking_uri=uri, auto_pretrain=auto_pretrain)
    if ref is not None:
        console.print(f"init {config.init}: {ref.name} version {ref.version} ({init_path})")
    label = variant_of(config).label
    kwargs = dict(init_path=init_path, checkpoint_dir=checkpoint_dir, resume_from=resume)
    if no_mlflow:
        result = run_trial(config, progress=True, **kwargs)
        _print_metrics(console, result.metrics)
        return
    from capstudy import keys, tracking
    from capstudy.data import dataset_fingerprint

    fingerprint = dataset_fingerprint(config.train_domain, "train", dict(config.data_roots))
    tags = tracking.trial_tags(config, data_fingerprint=fingerprint)
    roots = dict(config.data_roots)
    val_fp = dataset_fingerprint(config.train_domain, "val", roots, config.val_fraction)
    tags[keys.T_VAL_FINGERPRINT] = val_fp
    if ref is not None:
        tags.update(tracking.init_tags(ref))
    with tracking.run(experiment, f"{label} {config.init}", tags, tracking_uri=uri) as run_id:
        tracking.log_params(run_id, tracking.trial_params(config, label), uri)

        def report(metrics: dict[str, float], _dir) -> None:
            tracking.log_metrics(run_id, metrics, int(metrics["epoch"]), uri)

        result = run_trial(config, report, progress=True, **kwargs)
        tracking.log_torch_model(result.model)
    _print_metrics(console, result.metrics)
    console.print(f"MLflow run {run_id} in experiment {experiment!r} at {uri}")


def _print_metrics(console, metrics: dict[str, float]) -> None:
    from rich.table import Table

    table = Table("metric", "value", title="final epoch")
    for key in sorted(metrics):
        table.add_row(key, f"{metrics[key]:.4g}")
    console.print(table)
