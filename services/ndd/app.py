"""The NDD application (REST API under /api/v1, shaped like MediaVerse's): collections, indexing jobs
(`images/jobs`, `videos/jobs`, `GET /jobs/{id}`), search by indexed id, URL or upload
(`images/search/{id}?t_sim=&t_rank=&collection_id=`), `images/indices/{id}` DELETE and listings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.fetch import FetchError, ForbiddenURLError, TooLargeError
from services.common.http_errors import ERROR_RESPONSES, BodyLimitEnvelope, install_error_envelope
from services.common.logging import RequestIdMiddleware
from services.common.media import MediaError
from services.common.metrics import ServiceMetrics, add_metrics
from services.common.service_auth import api_key_dependencies
from services.common.settings import Settings, get_settings
from services.ndd.api.deps import ITEM_ID_MAX, URL_MAX
from services.ndd.api.routes import collections, health, images, jobs, videos
from services.ndd.core.config import NddSettings, get_ndd_settings
from services.ndd.descriptors.deep import DeepInputError, DescriptorUnavailableError
from services.ndd.engine import MissingDescriptorError, UnknownItemError
from services.ndd.jobs import QueueFullError
from services.ndd.metrics import Metrics
from services.ndd.service import NddService
from services.ndd.store import DuplicateError, UnknownCollectionError

MiB = 1024 * 1024
# A URL job item's JSON: an id and a URL at their length bounds (api/deps.py).
ITEM_BODY_BYTES = ITEM_ID_MAX + URL_MAX

# What the service's own exceptions mean to a client.
STATUSES: dict[type[Exception], int] = {
    UnknownCollectionError: 404, UnknownItemError: 404,
    ForbiddenURLError: 400, TooLargeError: 413, FetchError: 422, MediaError: 422, DeepInputError: 422,
    MissingDescriptorError: 409, DuplicateError: 409,
    DescriptorUnavailableError: 503, QueueFullError: 503,
}


def create_app(settings: Settings | None = None, ndd: NddSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    ndd = ndd or get_ndd_settings()
    # One registry per app: the shared request/latency/queue metrics and the NDD's own counters.
    service_metrics = ServiceMetrics("ndd")
    ndd_metrics = Metrics(service_metrics.registry)  # made once: an app may start more than once in tests

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = NddService(settings, ndd, ndd_metrics)
        app.state.ndd = service
        service_metrics.track_queue("ndd_jobs", lambda: service.jobs.waiting)
        service.start()
        try:
            yield
        finally:
            await service.close()

    # Bodies are capped while they stream in: JSON ones small, the ones that carry files at MAX_BODY_MB.
    json_cap = max(MiB, ndd.max_items_per_job * (ITEM_BODY_BYTES + 2 * 1024))
    app = FastAPI(title="MAAM near-duplicate detection", version="1.0", lifespan=lifespan,
                  responses=ERROR_RESPONSES, dependencies=api_key_dependencies(ndd.api_key, "NDD"),
                  description="Index images and videos in collections and find their near-duplicates.")
    app.state.metrics = service_metrics
    # Per router, not app-wide: a route's own cap answers through the middleware below, the app-wide one past it.
    for module in (collections, jobs, images, videos):
        app.include_router(module.router, prefix="/api/v1", max_body_size=json_cap)
    for module in (images, videos):
        app.include_router(module.uploads, prefix="/api/v1", max_body_size=ndd.max_body_mb * MiB)
    app.include_router(health.router, max_body_size=json_cap)
    install_error_envelope(app, STATUSES)
    app.add_middleware(BodyLimitEnvelope)  # a 413 for a body over its cap in the envelope
    add_metrics(app, service_metrics, route=False)  # routes/health.py serves the same registry
    app.add_middleware(RequestIdMiddleware)  # outermost: the id is bound for everything below
    return app
