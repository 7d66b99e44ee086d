"""`maam dam ...` commands and `maam ingest` (the lead mounts `app`: `reindex` and `ingest`)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.dam.people.cli import app as people_app

app = typer.Typer(help="The DAM: search index, re-annotation and bulk ingest.", no_args_is_help=True)
app.add_typer(people_app, name="people")  # maam dam people recluster / export-gallery / import-gallery
console = Console()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console)


@app.command()
def reindex() -> None:
    """Rebuild the search index (the configured backend) from PostgreSQL."""
    from services.dam.context import DamContext
    from services.dam.core.config import get_dam_settings
    from services.dam.reindex import reindex as run_reindex

    async def main() -> int:
        ctx = await DamContext.open(get_dam_settings())
        try:
            with _progress() as progress:
                task = progress.add_task(f"reindexing ({ctx.backend.name})", total=None)

                def step(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                return await run_reindex(ctx, step)
        finally:
            await ctx.close()

    count = asyncio.run(main())
    console.print(f"indexed {count} assets")


@app.command()
def reannotate(
    missing: Annotated[bool, typer.Option("--missing", help=(
        "Image assets without a vector from an installed embedding model (annotated before it was installed): "
        "run only those models."))] = False,
    all_assets: Annotated[bool, typer.Option("--all", help="Every image and video asset, every model.")] = False,
    wait: Annotated[bool, typer.Option(help="Follow the jobs until the DAM's workers have run them.")] = True,
) -> None:
    """Queue annotation jobs for assets the installed models have not seen (the running DAM runs them)."""
    from services.dam.context import DamContext
    from services.dam.core.config import get_dam_settings
    from services.dam.reannotate import NothingToRun, enqueue_plan, plan, wait_for

    if missing == all_assets:
        console.print("[red]give exactly one of --missing and --all[/red]")
        raise typer.Exit(2)

    async def main() -> dict[str, int]:
        ctx = await DamContext.open(get_dam_settings())
        try:
            work = await plan(ctx, "missing" if missing else "all")
            if missing:
                console.print(f"installed embedding models: {', '.join(work.models)}")
            if not work.jobs:
                return {"queued": 0}
            with _progress() as progress:
                queued = progress.add_task("queueing", total=len(work.jobs))
                job_ids = await enqueue_plan(ctx, work, lambda n: progress.advance(queued, n))
                if not wait:
                    return {"queued": len(job_ids)}
                annotated = progress.add_task("annotating (the DAM's workers)", total=len(job_ids))
                outcome = await wait_for(ctx, job_ids, lambda done, total: progress.update(
                    annotated, completed=done, total=total))
            return {"queued": len(job_ids), **outcome}
        finally:
            await ctx.close()

    try:
        counts = asyncio.run(main())
    except NothingToRun as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if not counts["queued"]:
        console.print("nothing to do: every asset is up to date")
        return
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    console.print(f"reannotate: {summary}")


@app.command()
def ingest(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder to upload (recursive).")],
    project: Annotated[str | None, typer.Option(help="Project id or name (created if missing).")] = None,
    url: Annotated[str | None, typer.Option(
        help="The DAM's base URL (default: MAAM_DAM__URL, else http://127.0.0.1:MAAM_DAM__PORT).")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="MAAM_DAM__API_KEY", help="Personal API key.")] = None,
    visibility: Annotated[str, typer.Option(help="private or public")] = "private",
) -> None:
    """Bulk upload a folder; files already uploaded (same sha256) are skipped, so a re-run resumes."""
    from services.dam.core.config import get_dam_settings
    from services.dam.ingest import ingest as run_ingest
    from services.dam.ingest import list_files

    if not api_key:
        console.print("[red]set MAAM_DAM__API_KEY (or --api-key): create one with POST /api/users/me/api-keys[/red]")
        raise typer.Exit(2)
    url = url or get_dam_settings().dam.base_url()
    total = len(list_files(directory))
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120) as client, \
            _progress() as progress:
        hashing = progress.add_task("hashing", total=total)
        uploading = progress.add_task("uploading", total=total)
        try:
            report = run_ingest(client, directory, project, visibility,
                                on_hashed=lambda n: progress.advance(hashing, n),
                                on_uploaded=lambda *_: progress.advance(uploading))
        except httpx.HTTPError as exc:
            console.print(f"[red]stopped: {exc}. Run the same command again to resume.[/red]")
            raise typer.Exit(1) from exc
    console.print(f"uploaded {len(report.uploaded)}, already there {report.skipped}, rejected {len(report.rejected)}")
    for path, reason in report.rejected.items():
        console.print(f"  [yellow]{os.path.relpath(path)}[/yellow]: {reason}")


if __name__ == "__main__":
    app()
