"""Everything a request or the CLI needs, built once per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import text

from services.common.metrics import ServiceMetrics, get_metrics
from services.dam.annotation.claims import Node, acquire_node
from services.dam.annotation.client import AnnotationClient
from services.dam.annotation.worker import AnnotationWorkers
from services.dam.blobstore import BlobStore
from services.dam.capabilities import CapabilityCache
from services.dam.core.blob_links import BlobLinks, load_or_create_key
from services.dam.core.config import DamSettings
from services.dam.core.db import Database, database_url, run_migrations, stop_embedded_postgres
from services.dam.core.priority import Foreground
from services.dam.core.throttle import LoginThrottle
from services.dam.duplicates import create_sync
from services.dam.duplicates.sync import NddSync
from services.dam.events import AssetEvents
from services.dam.indexer import Indexer
from services.dam.search.base import SearchBackend
from services.dam.spaces import known as known_spaces

log = logging.getLogger(__name__)

# Outbox states as the maam_annotation_backlog gauge names them.
BACKLOG_STATES = {"queued": "pending", "running": "claimed", "failed": "failed"}
_BACKLOG = text("SELECT state, count(*) FROM annotation_jobs WHERE state IN ('queued', 'running', 'failed') "
                "GROUP BY state")


def create_backend(settings: DamSettings, db: Database) -> SearchBackend:
    if settings.dam.search_backend == "elasticsearch":
        from services.dam.search.elasticsearch import ElasticsearchSearch

        return ElasticsearchSearch(settings.dam.elasticsearch_url, settings.dam.elasticsearch_index,
                                   vector_index=settings.dam.elasticsearch_vector_index,
                                   replicas=settings.dam.elasticsearch_replicas)
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
    blob_links: BlobLinks
    workers: AnnotationWorkers | None = None
    node: Node | None = None
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    ndd_sync: NddSync | None = None  # registers assets with NDD (services/dam/duplicates) when configured
    _gc_task: asyncio.Task | None = None
    _backlog_task: asyncio.Task | None = None
    capabilities: CapabilityCache = field(init=False)
    events: AssetEvents = field(init=False)

    def __post_init__(self) -> None:
        self.capabilities = CapabilityCache(self.client)  # what the annotation service can run now
        self.events = AssetEvents(self.db.url)  # live updates for the browsers; listens once the app starts

    @classmethod
    async def open(cls, settings: DamSettings) -> DamContext:
        url = await asyncio.to_thread(database_url, settings)
        await asyncio.to_thread(run_migrations, url)
        db = Database(url, settings)
        backend = create_backend(settings, db)
        async with db.sessions() as session:
            spaces = {name: space.dim for name, space in (await known_spaces(session)).items()}
        try:
            await backend.start(spaces)  # creates the index, or checks its mapping against the spaces
        except BaseException:
            await backend.close()
            await db.close()
            raise
        return cls(
            settings=settings, db=db, blobs=BlobStore(settings.blob_dir), backend=backend,
            indexer=Indexer(db.sessions, backend, settings.dam.object_min_score, settings.dam.index_flush_s),
            client=AnnotationClient(settings.annotation_target, settings.annotation.max_message_mb,
                                    settings.dam.annotation_timeout_s, settings.dam.annotation_models),
            login_throttle=LoginThrottle(settings.dam.login_account_failures, settings.dam.login_address_failures,
                                         settings.dam.login_window_s),
            # A link lives as long as the annotation stream that fetches it may take.
            blob_links=BlobLinks(await asyncio.to_thread(load_or_create_key, settings.dam_dir / "blob-links.key"),
                                 settings.dam.base_url(), settings.dam.annotation_timeout_s),
        )

    def start_background(self, foreground: Foreground | None = None) -> None:
        # Only the serving process takes the data folder's node (the CLI opens a context too).
        self.node = acquire_node(self.settings.dam_dir)
        self.workers = AnnotationWorkers(self.db.sessions, self.client, self.blobs, self.indexer, self.settings.dam,
                                         self.node, self.blob_links, foreground)
        self.workers.start(self.settings.dam.workers)
        self.indexer.start()
        self.ndd_sync = create_sync(self.db.sessions, self.blobs, self.settings.dam, self.settings.ndd.api_key)
        if self.ndd_sync is not None:
            self.ndd_sync.start()
        self._gc_task = asyncio.create_task(self._gc_loop(), name="blob-gc")
        self._backlog_task = asyncio.create_task(self._backlog_loop(get_metrics("dam")), name="annotation-backlog")

    def begin_shutdown(self) -> None:
        """Called from the SIGTERM handler: annotation workers stop claiming new jobs right away."""
        if self.workers is not None:
            self.workers.stop_claiming()

    async def update_backlog(self, metrics: ServiceMetrics) -> dict[str, int]:
        """Sets maam_annotation_backlog{state=pending|claimed|failed} from the jobs table."""
        async with self.db.sessions() as session:
            rows = (await session.execute(_BACKLOG)).all()
        counts = dict.fromkeys(BACKLOG_STATES.values(), 0)
        for state, count in rows:
            counts[BACKLOG_STATES[state]] = int(count)
        for state, count in counts.items():
            metrics.annotation_backlog.labels(state=state).set(count)
        return counts

    async def _backlog_loop(self, metrics: ServiceMetrics) -> None:
        while True:
            try:
                await self.update_backlog(metrics)
            except Exception:  # the database is briefly away: the gauge keeps its last value
                log.warning("cannot read the annotation backlog", exc_info=True)
            await asyncio.sleep(self.settings.dam.backlog_interval_s)

    async def _gc_loop(self) -> None:
        from services.dam.gc import collect_garbage

        # At startup the orphan sweep also takes every temporary file as a leftover of a dead run (unless
        # another process shares the data folder); afterwards it runs once per grace period.
        swept_at = float("-inf")
        startup = self.node is not None and self.node.exclusive
        while True:
            sweep = time.monotonic() - swept_at >= self.settings.dam.gc_grace_s
            try:
                report = await collect_garbage(self, sweep=sweep, all_temporary=startup)
                if any(report.values()):
                    log.info("garbage collection: %s", report)
                if sweep:
                    swept_at, startup = time.monotonic(), False
            except Exception:
                log.exception("garbage collection failed")
            await asyncio.sleep(self.settings.dam.gc_interval_s)

    async def close(self) -> None:
        await self.events.close()
        for task in (self._gc_task, self._backlog_task):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.ndd_sync is not None:
            await self.ndd_sync.stop()  # a batch cut short is retried after its lease
        if self.workers:
            # In-flight jobs finish within the grace period; the rest go back to the queue.
            await self.workers.stop(self.settings.dam.shutdown_grace_s)
        await self.indexer.close()  # what the workers marked reaches the index before it closes
        await self.client.close()
        await self.backend.close()
        await self.db.close()
        if not self.settings.dam.database_url:
            await asyncio.to_thread(stop_embedded_postgres)
