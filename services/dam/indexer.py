"""Keeps the search backend in step with PostgreSQL, one asset at a time."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dam.search.base import SearchBackend
from services.dam.search.documents import load_doc


class Indexer:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], backend: SearchBackend, object_min_score: float):
        self._sessions = sessions
        self.backend = backend
        self._min_score = object_min_score

    async def sync(self, asset_id: int) -> None:
        async with self._sessions() as session:
            doc = await load_doc(session, asset_id, self._min_score)
        if doc is None:
            await self.backend.delete(asset_id)
        else:
            await self.backend.upsert(doc)

    async def sync_many(self, asset_ids: list[int]) -> None:
        for asset_id in asset_ids:
            await self.sync(asset_id)
