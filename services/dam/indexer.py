"""Keeps the search backend in step with PostgreSQL.

`sync(ids)` writes at once, in one bulk for all the ids (a request's own change is visible to its next
search). `mark(id)` defers: each annotation result marks its asset, and a flusher writes every marked
asset in one bulk per `flush_interval_s`, so an asset whose models answer within one interval is built
once, not once per model, and many assets annotated together share one bulk write. The worker calls
`flush(id)` before it records the asset as annotated, so `done` means searchable.

Each sync first takes a version for its assets (`search_sync`, under a shared lock that a reindex takes
exclusively to learn where it began); the documents carry it, and a backend never lets an older build
replace a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dam import metrics
from services.dam.search.base import SearchBackend
from services.dam.search.documents import load_docs

log = logging.getLogger(__name__)

SYNC_LOCK = 0x6D61616D_0002
_RETRY_S = 5.0
_BUMP = text("""
INSERT INTO search_sync (asset_id, seq)
SELECT id, nextval('search_sync_seq') FROM unnest(CAST(:ids AS bigint[])) AS id
ON CONFLICT (asset_id) DO UPDATE SET seq = EXCLUDED.seq
""")


class Indexer:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], backend: SearchBackend, object_min_score: float,
                 flush_interval_s: float = 0.25) -> None:
        self._sessions = sessions
        self.backend = backend
        self._min_score = object_min_score
        self._interval = flush_interval_s
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task | None = None

    async def sync(self, asset_ids: int | Iterable[int], cause: str = "change") -> None:
        ids = sorted({asset_ids} if isinstance(asset_ids, int) else set(asset_ids))
        if not ids:
            return
        async with self._sessions.begin() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": SYNC_LOCK})
            await session.execute(_BUMP, {"ids": ids})
            docs = await load_docs(session, ids, self._min_score)
        await self.backend.upsert_many(list(docs.values()))
        await self.backend.delete_many([i for i in ids if i not in docs])
        metrics.SEARCH_DOCS_WRITTEN.labels(cause).inc(len(docs))

    # ---- deferred syncs (annotation results) ------------------------------------------------
    def mark(self, asset_id: int) -> None:
        self._dirty.add(asset_id)
        self._wake.set()

    async def flush(self, asset_id: int | None = None) -> bool:
        """Writes the marked assets now (only `asset_id`, when given and marked). A failure leaves them
        marked for the flusher to retry and returns False; it is logged, not raised (PostgreSQL holds the
        truth, and the annotation it follows is stored)."""
        ids = set(self._dirty) if asset_id is None else ({asset_id} & self._dirty)
        if not ids:
            return True
        self._dirty -= ids
        try:
            await self.sync(ids, cause="annotation")
        except Exception:
            log.exception("search index: cannot write %d document(s); retrying later", len(ids))
            self._dirty |= ids
            self._wake.set()
            return False
        return True

    async def flush_many(self, asset_ids: Iterable[int]) -> bool:
        """`flush` for several assets in one bulk (a batch of annotated assets)."""
        ids = set(asset_ids) & self._dirty
        if not ids:
            return True
        self._dirty -= ids
        try:
            await self.sync(ids, cause="annotation")
        except Exception:
            log.exception("search index: cannot write %d document(s); retrying later", len(ids))
            self._dirty |= ids
            self._wake.set()
            return False
        return True

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="search-index-flusher")

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._interval)  # let results of this interval gather into one bulk
            if not await self.flush():
                await asyncio.sleep(_RETRY_S)  # the backend is away: no busy retry loop

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
