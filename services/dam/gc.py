"""Purging soft-deleted assets after their grace period, then blobs no asset references any more."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from services.dam.context import DamContext


async def collect_garbage(ctx: DamContext, grace_s: float | None = None) -> dict[str, int]:
    grace = ctx.settings.dam.gc_grace_s if grace_s is None else grace_s
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
        if sha not in still_used:
            await asyncio.to_thread(ctx.blobs.delete, sha)
            for thumb in ctx.settings.thumb_dir.glob(f"{sha}_*"):
                thumb.unlink(missing_ok=True)
            removed += 1
    await ctx.indexer.sync([r.id for r in rows])  # the rows are gone: their documents go
    return {"assets_purged": len(rows), "blobs_removed": removed}
