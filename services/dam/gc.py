"""Garbage collection: soft-deleted assets past their grace period (rows, then blobs no row references), and
the orphan sweep: blob files no row references and temporary files of uploads that never finished.

A blob moves to its address only after its row commits (api/routes/assets.py), so a listed blob's row, if
any, is visible to the read that follows the listing. A blob with no row is first moved aside, then the rows
are read again: an upload of the same bytes that committed meanwhile gets its blob back."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from services.dam.context import DamContext

async def collect_garbage(ctx: DamContext, grace_s: float | None = None, sweep: bool = True,
                          all_temporary: bool = False) -> dict[str, int]:
    """`sweep`: also the orphan sweep. `all_temporary`: every temporary file is a leftover, whatever its
    age (at startup, when no other process shares the data folder)."""
    grace = ctx.settings.dam.gc_grace_s if grace_s is None else grace_s
    report = await _purge_deleted(ctx, grace)
    report.update(orphan_blobs_removed=0, temp_files_removed=0, temp_files_adopted=0)
    if sweep:
        report["orphan_blobs_removed"] = await _sweep_orphans(ctx)
        adopted, removed = await _sweep_temporary(ctx, 0.0 if all_temporary else grace)
        report.update(temp_files_adopted=adopted, temp_files_removed=removed)
    return report


async def _purge_deleted(ctx: DamContext, grace: float) -> dict[str, int]:
    async with ctx.db.sessions.begin() as session:
        rows = (await session.execute(text("""
            DELETE FROM assets WHERE deleted_at IS NOT NULL AND deleted_at <= now() - make_interval(secs => :g)
            RETURNING id, sha256"""), {"g": grace})).all()
        shas = sorted({r.sha256 for r in rows})
        still_used = set()
        if shas:
            still_used = {r[0] for r in (await session.execute(
                text("SELECT DISTINCT sha256 FROM assets WHERE sha256 = ANY(:s)"), {"s": shas})).all()}
    removed = 0
    for sha in shas:
        if sha not in still_used and await _remove_unreferenced(ctx, ctx.blobs.path(sha)):
            _remove_thumbnails(ctx, sha)
            removed += 1
    await ctx.indexer.sync([r.id for r in rows])  # the rows are gone: their documents go
    return {"assets_purged": len(rows), "blobs_removed": removed}


async def _referenced(ctx: DamContext, shas: list[str]) -> set[str]:
    async with ctx.db.sessions() as session:
        return {r[0] for r in (await session.execute(
            text("SELECT DISTINCT sha256 FROM assets WHERE sha256 = ANY(:s)"), {"s": shas})).all()}


async def _sweep_orphans(ctx: DamContext) -> int:
    removed = 0
    for files in await asyncio.to_thread(lambda: list(ctx.blobs.stored())):
        if not files:
            continue
        used = await _referenced(ctx, [p.name for p in files])
        for path in files:
            if path.name not in used and await _remove_unreferenced(ctx, path):
                _remove_thumbnails(ctx, path.name)
                removed += 1
    return removed


async def _sweep_temporary(ctx: DamContext, idle_s: float) -> tuple[int, int]:
    """Temporary upload files idle for `idle_s`: one whose bytes a row references while its blob is missing
    (the DAM died between the row's commit and the move) takes the blob's place; the others are deleted."""
    adopted = removed = 0
    cutoff = time.time() - idle_s
    for path in await asyncio.to_thread(ctx.blobs.temporary):
        try:
            if path.stat().st_mtime > cutoff:
                continue  # an upload still streaming in
            sha = await asyncio.to_thread(_file_sha256, path)
        except FileNotFoundError:
            continue
        target = ctx.blobs.path(sha)
        if not target.exists() and await _referenced(ctx, [sha]):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            os.utime(target)
            adopted += 1
        else:
            path.unlink(missing_ok=True)
            removed += 1
    return adopted, removed


async def _remove_unreferenced(ctx: DamContext, path: Path) -> bool:
    """Deletes a blob no row referenced when last read: moved aside first, it is put back if a row refers to
    it now (an upload of the same bytes committed in between and found the blob already there)."""
    aside = ctx.blobs.tmp_dir / f"gc-{path.name}"
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return False
    if await _referenced(ctx, [path.name]):
        os.replace(aside, path)  # identical bytes if that upload has moved its own copy in meanwhile
        return False
    aside.unlink(missing_ok=True)
    return True


def _remove_thumbnails(ctx: DamContext, sha: str) -> None:
    for thumb in ctx.settings.thumb_dir.glob(f"{sha}_*"):
        thumb.unlink(missing_ok=True)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
