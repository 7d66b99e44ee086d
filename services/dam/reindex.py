"""Rebuilding the search index from PostgreSQL (the source of truth) while the DAM keeps serving.

The backend builds behind the live index (Elasticsearch: a new index, swapped in under the alias at the
end; PostgreSQL: in place, batch by batch), so searches never see an empty or half-built index. Changes
made while it runs are not lost: every sync takes a version first, and the assets synced since the
rebuild began are written again once it is live (versions keep the newest document)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from services.dam.context import DamContext
from services.dam.indexer import SYNC_LOCK
from services.dam.search.documents import load_docs
from services.dam.spaces import known

BATCH = 500


async def reindex(ctx: DamContext, progress: Callable[[int, int], None] | None = None) -> int:
    """Writes one document per live asset into a fresh index and makes it the live one; returns how many."""
    async with ctx.db.sessions.begin() as session:
        # Exclusive: syncs that took a version before this point have committed it, so `since` covers them.
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SYNC_LOCK})
        since = int((await session.execute(text("SELECT coalesce(max(seq), 0) FROM search_sync"))).scalar_one())
        ids = [r[0] for r in (await session.execute(
            text("SELECT id FROM assets WHERE deleted_at IS NULL ORDER BY id"))).all()]
        spaces = {name: space.dim for name, space in (await known(session)).items()}
    done = 0
    async with ctx.backend.rebuild(spaces) as target:
        for start in range(0, len(ids), BATCH):
            async with ctx.db.sessions() as session:
                docs = await load_docs(session, ids[start:start + BATCH], ctx.settings.dam.object_min_score)
            await target.write(list(docs.values()))
            done += len(docs)
            if progress:
                progress(done, len(ids))
    # What changed while the rebuild ran may have gone to the previous index: write it again, now live.
    async with ctx.db.sessions() as session:
        changed = [r[0] for r in (await session.execute(
            text("SELECT asset_id FROM search_sync WHERE seq > :s ORDER BY asset_id"), {"s": since})).all()]
    for start in range(0, len(changed), BATCH):
        batch = changed[start:start + BATCH]
        async with ctx.db.sessions() as session:
            docs = await load_docs(session, batch, ctx.settings.dam.object_min_score)
        await ctx.backend.upsert_many(list(docs.values()))
        await ctx.backend.delete_many([i for i in batch if i not in docs])
    await ctx.backend.refresh()
    return done
