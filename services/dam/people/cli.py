"""`maam dam people ...`: the full re-clustering, and the gallery export / import."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:  # for annotations only: the commands import the DAM when they run, so `maam` starts fast
    from services.dam.context import DamContext
    from services.dam.people.recluster import ReclusterReport

T = TypeVar("T")

app = typer.Typer(help="People: faces clustered into persons.", no_args_is_help=True)
console = Console()


async def _with_context(work: Callable[[DamContext], Awaitable[T]]) -> T:
    from services.dam.context import DamContext
    from services.dam.core.config import get_dam_settings

    ctx = await DamContext.open(get_dam_settings())
    try:
        return await work(ctx)
    finally:
        await ctx.close()


@app.command()
def recluster(owner: Annotated[int | None, typer.Option(help="Only this user's faces (default: every user).")]
              = None) -> None:
    """Clusters faces into persons afresh, user by user (names, moved faces, merges, rejections kept)."""
    from services.dam.people.options import PeopleOptions
    from services.dam.people.recluster import owners_with_faces, recluster_owner

    async def work(ctx: DamContext) -> list[ReclusterReport]:
        options = PeopleOptions.of(ctx.settings.dam)
        async with ctx.db.sessions() as session:
            owners = [owner] if owner is not None else await owners_with_faces(session)
        reports = []
        for owner_id in owners:
            async with ctx.db.sessions.begin() as session:
                report = await recluster_owner(session, owner_id, options)
            await ctx.indexer.sync(report.changed_assets, cause="people")
            reports.append(report)
        return reports

    for r in asyncio.run(_with_context(work)):
        console.print(f"user {r.owner_id}: {r.faces} faces, {r.persons} persons ({r.new_persons} new, "
                      f"{r.removed_persons} removed), {len(r.changed_assets)} assets changed")


@app.command("export-gallery")
def export_gallery_command(
    out: Annotated[Path, typer.Argument(help="The .npz to write (MAAM_ANNOTATION__FACE_GALLERY reads it).")],
    owner: Annotated[int, typer.Option(help="Whose named persons.")],
    space: Annotated[str, typer.Option(help="The face-embedding space (model).")] = "faceres",
    public: Annotated[bool, typer.Option(help="Also other users' named persons seen through their public "
                                              "assets.")] = True,
) -> None:
    """Named persons (the owner's, and other users' public ones) as the annotation service's face gallery."""
    from services.dam.people.gallery import export_gallery

    async def work(ctx: DamContext) -> bytes:
        async with ctx.db.sessions() as session:
            return await export_gallery(session, owner, space, public)

    data = asyncio.run(_with_context(work))
    out.write_bytes(data)
    console.print(f"wrote {out} ({len(data)} bytes)")


@app.command("import-gallery")
def import_gallery_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A gallery .npz (names, vectors).")],
    owner: Annotated[int, typer.Option(help="The user the named persons belong to.")],
    space: Annotated[str, typer.Option(help="The embedding space the vectors are in.")] = "faceres",
) -> None:
    """A hand-made gallery becomes named persons; new faces of that user join them."""
    from services.dam.people.gallery import GalleryError, import_gallery

    async def work(ctx: DamContext) -> int:
        async with ctx.db.sessions.begin() as session:
            return await import_gallery(session, owner, space, path.read_bytes())

    try:
        created = asyncio.run(_with_context(work))
    except GalleryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"{created} persons created")
