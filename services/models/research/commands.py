"""`maam models train`, `maam models distill` and `maam models export-trained`: the source document's models
(MemeFier, MV-SD, ALBEF) trained from a config file, InDistill run on a directory of unlabelled images.
Registered on `services.models.cli.app`; torch is imported only when a command runs (the [export] extra)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from services.models.errors import ModelsError, require_export_extra

if TYPE_CHECKING:  # the trainers import torch: only when a command runs
    from services.models.research.albef.train import AlbefRun
    from services.models.research.memefier.train import MemefierRun
    from services.models.research.mvsd.train import MvsdRun

TRAINABLE = ("memefier", "mvsd", "albef")


def read_config(path: Path) -> dict[str, Any]:
    """A YAML or JSON file (YAML is a superset of JSON)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelsError(f"cannot read the config {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ModelsError(f"{path}: a config is a mapping of sections (dataset, architecture, training)")
    return data


def _validated(kind: str, data: dict[str, Any]) -> Any:
    from pydantic import BaseModel, ValidationError

    config: type[BaseModel]
    if kind == "memefier":
        from services.models.research.memefier.config import MemefierConfig

        config = MemefierConfig
    elif kind == "mvsd":
        from services.models.research.mvsd.config import MvsdConfig

        config = MvsdConfig
    else:
        from services.models.research.albef.config import AlbefConfig

        config = AlbefConfig
    try:
        return config.model_validate(data)
    except ValidationError as exc:
        raise ModelsError(f"invalid {kind} config:\n{exc}") from exc


def _threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


def train(kind: str, config: Any, output: Path, log_every: int) -> tuple[Path, list[float], dict[str, Any]]:
    run: MemefierRun | MvsdRun | AlbefRun
    if kind == "memefier":
        from services.models.research.memefier.train import train_memefier

        run = train_memefier(config, output, log_every=log_every)
    elif kind == "mvsd":
        from services.models.research.mvsd.train import train_mvsd

        run = train_mvsd(config, output, evaluate_videos=3, log_every=log_every)
    else:
        from services.models.research.albef.train import train_albef

        run = train_albef(config, output, log_every=log_every)
    return run.checkpoint, run.log.losses, dict(run.metrics)


def register(app: typer.Typer, repository_of: Any) -> None:
    """Adds the commands to `app`; `repository_of(path | None)` resolves the model repository."""

    @app.command("train")
    def train_command(
        model: Annotated[str, typer.Argument(help=f"One of: {', '.join(TRAINABLE)}.")],
        config: Annotated[Path, typer.Option(help="YAML/JSON config (see docs/research_models.md).")],
        output: Annotated[Path, typer.Option(help="Directory for the checkpoint.")] = Path("var/research"),
        install: Annotated[str | None, typer.Option(help="Export the trained model under this name.")] = None,
        head: Annotated[str | None, typer.Option(help="MemeFier: the head the installed model serves.")] = None,
        grid: Annotated[bool, typer.Option(help="MemeFier: run the document's 64-setting grid.")] = False,
        threads: Annotated[int, typer.Option(help="torch threads (0 = torch's default).")] = 0,
        log_every: Annotated[int, typer.Option(help="Log the loss every N steps (0 = never).")] = 50,
        repository: Annotated[Path | None, typer.Option(help="Model repository (default: settings).")] = None,
    ) -> None:
        """Train MemeFier, MV-SD or ALBEF from a config; prints the loss and the document's metrics."""
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        try:
            if model not in TRAINABLE:
                raise ModelsError(f"unknown model {model!r}; `maam models train` knows {', '.join(TRAINABLE)}")
            require_export_extra(f"training {model}")
            _threads(threads)
            parsed = _validated(model, read_config(config))
            runs = [parsed]
            if grid:
                if model != "memefier":
                    raise ModelsError("--grid is MemeFier's hyper-parameter grid")
                from services.models.research.memefier.config import grid as memefier_grid

                runs = memefier_grid(parsed)
            for i, run_config in enumerate(runs):
                target = Path(output) / model / (f"grid-{i:02d}" if grid else "")
                checkpoint, losses, metrics = train(model, run_config, target, log_every)
                print(json.dumps({"checkpoint": str(checkpoint), "steps": len(losses), "first_loss": losses[0],
                                  "last_loss": losses[-1], "metrics": metrics}))
                if install and not grid:
                    from services.models.research.installing import export_checkpoint

                    root = repository_of(repository)
                    for name, diff in export_checkpoint(checkpoint, root, install, head=head).items():
                        print(f"installed {name} in {root / name} (ONNX vs torch max abs diff {diff:.3g})")
        except ModelsError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from exc

    @app.command("distill")
    def distill_command(
        teacher: Annotated[str, typer.Argument(help="`nsfwjs` (npm nsfwjs@4.3.0) or ARCH[:WIDTH]:CHECKPOINT.pt.")],
        student: Annotated[str, typer.Option(help="torchvision ARCH[:WIDTH], e.g. mobilenet_v2:0.5.")],
        data: Annotated[Path, typer.Option(help="Directory of unlabelled images (searched recursively).")],
        steps: Annotated[int, typer.Option(help="Optimiser steps in all.")] = 2000,
        batch_size: Annotated[int, typer.Option(help="Images per step.")] = 16,
        learning_rate: Annotated[float, typer.Option(help="Adam's learning rate.")] = 1e-3,
        plain_kd: Annotated[bool, typer.Option(help="Plain knowledge distillation instead (no pruning).")] = False,
        labels: Annotated[Path | None, typer.Option(help="Class labels of an ARCH:CHECKPOINT teacher.")] = None,
        task: Annotated[str, typer.Option(help="Repository task of the student (ARCH:CHECKPOINT teachers).")] = "",
        install: Annotated[str | None, typer.Option(help="Export the student under this name.")] = None,
        output: Annotated[Path, typer.Option(help="Directory for the checkpoint.")] = Path("var/research"),
        cache: Annotated[Path | None, typer.Option(help="npm package cache (default ~/.cache/maam).")] = None,
        threads: Annotated[int, typer.Option(help="torch threads (0 = torch's default).")] = 0,
        repository: Annotated[Path | None, typer.Option(help="Model repository (default: settings).")] = None,
    ) -> None:
        """InDistill (3.2.1): prune the teacher's aligned layers to the student's widths, distil them with the
        curriculum, then the teacher's soft labels; writes an installable student."""
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        try:
            require_export_extra("distilling")
            _threads(threads)
            from services.models.research.indistill.run import distill_directory

            result = distill_directory(
                teacher, student, data, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                plain=plain_kd, labels_file=labels, task=task, output=output, cache=cache,
            )
            print(json.dumps(result.summary))
            if install:
                from services.models.research.installing import export_checkpoint

                root = repository_of(repository)
                for name, diff in export_checkpoint(result.checkpoint, root, install).items():
                    print(f"installed {name} in {root / name} (ONNX vs torch max abs diff {diff:.3g})")
        except ModelsError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from exc

    @app.command("export-trained")
    def export_command(
        checkpoint: Annotated[Path, typer.Argument(help="A checkpoint of `maam models train` / `distill`.")],
        name: Annotated[str, typer.Option(help="Repository name of the exported model.")],
        head: Annotated[str | None, typer.Option(help="MemeFier: the head the model serves.")] = None,
        task: Annotated[str | None, typer.Option(help="Override the repository task.")] = None,
        repository: Annotated[Path | None, typer.Option(help="Model repository (default: settings).")] = None,
    ) -> None:
        """Export a trained checkpoint to ONNX in the model repository (verified against torch)."""
        try:
            require_export_extra("exporting a trained model")
            from services.models.research.installing import export_checkpoint

            root = repository_of(repository)
            for model, diff in export_checkpoint(checkpoint, root, name, head=head, task=task).items():
                print(f"installed {model} in {root / model} (ONNX vs torch max abs diff {diff:.3g})")
        except ModelsError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from exc
