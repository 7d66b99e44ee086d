"""Everything a request or the CLI needs, built once per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from services.dam.annotation.client import AnnotationClient
from services.dam.annotation.worker import AnnotationWorkers
from services.dam.blobstore import BlobStore
from services.dam.core.config import DamSettings
from services.dam.core.db import Database, database_url, run_migrations, stop_embedded_postgres
from services.dam.indexer import Indexer
from services.dam.search.base import SearchBackend

log = logging.getLogger(__name__)


def create_backend(settings: DamSettings, db: Database) -> SearchBackend:
    if settings.dam.search_backend == "elasticsearch":
        from services.dam.search.elasticsearch import ElasticsearchSearch

        return ElasticsearchSearch(settings.dam.elasticsearch_url, settings.dam.elasticsearch_index,
                                   settings.dam.embedding_dim)
    from services.dam.search.postgres import PostgresSearch

    return PostgresSearch(db.sessions, ef_search=settings.dam.hnsw_ef_search)


@dataclass
class DamContext:
    settings: DamSettings
    db: Database
    blobs: BlobStore
    backend: SearchBackend
    indexer: Indexer
    client: AnnotationClient
    workers: AnnotationWorkers | None = None
    _gc_task: asyncio.Task | None = None

    @classmethod
    async def open(cls, settings: DamSettings) -> DamContext:
        url = await asyncio.to_thread(database_url, settings)
        await asyncio.to_thread(run_migrations, url, settings.dam.embedding_dim)
        db = Database(url, settings)
        backend = create_backend(settings, db)
        if hasattr(backend, "ensure_index"):
            await backend.ensure_index()
        return cls(
            settings=settings, db=db, blobs=BlobStore(settings.blob_dir), backend=backend,
            indexer=Indexer(db.sessions, backend, settings.dam.object_min_score),
            client=AnnotationClient(settings.annotation_target, settings.annotation.max_message_mb,
                                    settings.dam.annotation_timeout_s, settings.dam.annotation_models),
        )

    def start_background(self) -> None:
        self.workers = AnnotationWorkers(self.db.sessions, self.client, self.blobs, self.indexer, self.settings.dam)
        self.workers.start(self.settings.dam.workers)
        self._gc_task = asyncio.create_task(self._gc_loop(), name="blob-gc")

    async def _gc_loop(self) -> None:
        from services.dam.gc import collect_garbage

        while True:
            await asyncio.sleep(self.settings.dam.gc_interval_s)
            try:
                await collect_garbage(self)
            except Exception:
                log.exception("garbage collection failed")

    async def close(self) -> None:
        if self._gc_task:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
        if self.workers:
            await self.workers.stop()
        await self.client.close()
        await self.backend.close()
        await self.db.close()
        if not self.settings.database_url:
            await asyncio.to_thread(stop_embedded_postgres)
