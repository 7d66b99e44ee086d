"""The indexer builds search documents in bulk and coalesces annotation results: many marks of one asset are
one document build, marks of many assets one bulk write, and a write of an older build never replaces a newer
one. Real PostgreSQL, the real postgres backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from services.dam import metrics
from services.dam.core.config import DamSettings
from services.dam.core.db import Database, run_migrations
from services.dam.indexer import Indexer
from services.dam.search.base import SearchDoc, SearchQuery
from services.dam.search.documents import load_docs
from services.dam.search.postgres import PostgresSearch
from tests.dam.conftest import fresh_database


class CountingBackend(PostgresSearch):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bulks: list[list[int]] = []

    async def upsert_many(self, docs: Sequence[SearchDoc]) -> None:
        self.bulks.append([d.asset_id for d in docs])
        await super().upsert_many(docs)


def _written() -> float:
    return metrics.SEARCH_DOCS_WRITTEN.labels("annotation")._value.get()


async def test_marks_coalesce_into_one_bulk_and_versions_order_writes(pg_server_uri):
    url = fresh_database(pg_server_uri)
    run_migrations(url)
    db = Database(url, DamSettings(database_url=url))
    try:
        async with db.sessions.begin() as session:
            await session.execute(text("INSERT INTO users (id, email, password_hash) VALUES (1, 'a@x.org', 'x')"))
            for i in range(1, 6):
                await session.execute(text(
                    "INSERT INTO assets (id, owner_id, visibility, title, mime, kind, size, sha256) "
                    "VALUES (:i, 1, 'public', :t, 'image/png', 'image', 1, :s)"),
                    {"i": i, "t": f"asset number {i}", "s": f"{i:064d}"})
        backend = CountingBackend(db.sessions)
        indexer = Indexer(db.sessions, backend, object_min_score=0.0, flush_interval_s=60)
        before = _written()
        for _ in range(20):  # twenty results of one asset's models ...
            indexer.mark(1)
        for asset_id in (2, 3, 4, 5):  # ... and the results of four more assets in the same interval
            indexer.mark(asset_id)
        assert backend.bulks == []  # nothing is written per result
        assert await indexer.flush(3)  # the worker's flush before `done`: that asset alone
        assert await indexer.flush()
        assert backend.bulks == [[3], [1, 2, 4, 5]] and _written() - before == 5
        assert await indexer.flush()  # nothing marked: no write
        assert len(backend.bulks) == 2
        found = await backend.search(SearchQuery(viewer_id=1, q="number", facets=False))
        assert found.total == 5

        # A stale build (taken before the latest sync) changes nothing.
        async with db.sessions() as session:
            stale = (await load_docs(session, [1], 0.0))[1]
        async with db.sessions.begin() as session:
            await session.execute(text("UPDATE assets SET title = 'renamed cathedral' WHERE id = 1"))
        await indexer.sync(1)
        stale.title = "stale gargoyle"
        await backend.upsert(stale)
        assert (await backend.search(SearchQuery(viewer_id=1, q="cathedral", facets=False))).total == 1
        assert (await backend.search(SearchQuery(viewer_id=1, q="gargoyle", facets=False))).total == 0
    finally:
        await db.close()


class AliasedMemoryBackend(PostgresSearch):
    """Elasticsearch's layout in memory: writes go to the live index; a rebuild fills a new one that replaces
    the live one only at the end (so a live write during the rebuild lands in the index being replaced)."""

    def __init__(self, *args, on_rebuild_write=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.live: dict[int, SearchDoc] = {}
        self._on_write = on_rebuild_write

    async def upsert_many(self, docs: Sequence[SearchDoc]) -> None:
        for doc in docs:
            if doc.asset_id not in self.live or self.live[doc.asset_id].version <= doc.version:
                self.live[doc.asset_id] = doc

    async def delete_many(self, asset_ids: Sequence[int]) -> None:
        for asset_id in asset_ids:
            self.live.pop(asset_id, None)

    def rebuild(self, spaces):
        import contextlib

        backend = self

        class Target:
            def __init__(self) -> None:
                self.docs: dict[int, SearchDoc] = {}

            async def write(self, docs: Sequence[SearchDoc]) -> None:
                self.docs |= {d.asset_id: d for d in docs}
                if backend._on_write:
                    await backend._on_write()

        @contextlib.asynccontextmanager
        async def swap():
            target = Target()
            yield target
            backend.live = target.docs  # the alias swap

        return swap()


async def test_reindex_replays_what_changed_while_it_ran(pg_server_uri, tmp_path):
    from services.dam.context import DamContext
    from services.dam.reindex import reindex

    url = fresh_database(pg_server_uri)
    run_migrations(url)
    settings = DamSettings(database_url=url, data_dir=tmp_path)
    db = Database(url, settings)
    try:
        async with db.sessions.begin() as session:
            await session.execute(text("INSERT INTO users (id, email, password_hash) VALUES (1, 'a@x.org', 'x')"))
            for i in (1, 2):
                await session.execute(text(
                    "INSERT INTO assets (id, owner_id, title, mime, kind, size, sha256) "
                    "VALUES (:i, 1, 'before', 'image/png', 'image', 1, :s)"), {"i": i, "s": f"{i:064d}"})
        changed = False

        async def edit_during_rebuild() -> None:  # a user renames asset 1 while the new index is loading
            nonlocal changed
            if not changed:
                changed = True
                async with db.sessions.begin() as session:
                    await session.execute(text("UPDATE assets SET title = 'after' WHERE id = 1"))
                await indexer.sync(1)  # goes to the live (old) index

        backend = AliasedMemoryBackend(db.sessions, on_rebuild_write=edit_during_rebuild)
        indexer = Indexer(db.sessions, backend, 0.0)
        unused: Any = None  # reindex touches neither the blob store nor the annotation service
        ctx = DamContext(settings=settings, db=db, blobs=unused, backend=backend, indexer=indexer, client=unused)
        import services.dam.reindex as module

        module.BATCH, batch = 1, module.BATCH  # one asset per batch: the edit falls between the two loads
        try:
            assert await reindex(ctx) == 2
        finally:
            module.BATCH = batch
        assert changed and backend.live[1].title == "after" and backend.live[2].title == "before"
    finally:
        await db.close()
