"""Rebuilding the search index from PostgreSQL (the source of truth)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from services.dam.context import DamContext
from services.dam.search.documents import load_doc

BATCH = 500


async def reindex(ctx: DamContext, progress: Callable[[int, int], None] | None = None) -> int:
    """Drops the index and writes one document per live asset; returns how many."""
    async with ctx.db.sessions() as session:
        ids = [r[0] for r in (await session.execute(
            text("SELECT id FROM assets WHERE deleted_at IS NULL ORDER BY id"))).all()]
    await ctx.backend.reset()
    done = 0
    bulk = getattr(ctx.backend, "bulk_upsert", None)
    for start in range(0, len(ids), BATCH):
        async with ctx.db.sessions() as session:
            docs = [d for d in [await load_doc(session, i, ctx.settings.dam.object_min_score)
                                for i in ids[start:start + BATCH]] if d is not None]
        if bulk is not None:
            await bulk(docs)
        else:
            for doc in docs:
                await ctx.backend.upsert(doc)
        done += len(docs)
        if progress:
            progress(done, len(ids))
    await ctx.backend.refresh()
    return done
