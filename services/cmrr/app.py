"""The CMRR application, compatible with the original MediaVerse CMRR service (`/mv_retrieval/v0.1/...`, raw
bodies, query parameters), plus listing and deleting a user's content. Routes are thin: the work is in
service.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from prometheus_client import Counter
from starlette.responses import Response

from services.cmrr.api.routes import contents, health, original
from services.cmrr.core.config import CmrrSettings, get_cmrr_settings
from services.cmrr.service import CmrrService
from services.common.http_errors import ERROR_RESPONSES, install_error_envelope
from services.common.inference import (
    InferenceBackend,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelUnavailableError,
    create_backend,
)
from services.common.logging import RequestIdMiddleware
from services.common.metrics import ServiceMetrics, add_metrics, instrument_backend
from services.common.model_repository import ModelNotFoundError, ModelRepository
from services.common.service_auth import api_key_dependencies
from services.common.settings import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "/mv_retrieval/v0.1"

# What the inference layer's exceptions mean to a client.
STATUSES: dict[type[Exception], int] = {
    ModelNotFoundError: 503, InvalidInputError: 400, ModelUnavailableError: 503, InferenceTimeoutError: 503,
    InferenceError: 502,
}


async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """The CMRR's own request counter (route and status), beside the shared HTTP metrics."""
    counter: Counter = request.app.state.requests
    try:
        response = await call_next(request)
    except Exception:
        counter.labels(request.url.path, "500").inc()
        raise
    counter.labels(request.url.path, str(response.status_code)).inc()
    return response


def create_app(
    settings: Settings | None = None,
    cmrr: CmrrSettings | None = None,
    repository: ModelRepository | None = None,
    backend: InferenceBackend | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    cmrr = cmrr or get_cmrr_settings()
    repository = repository or ModelRepository(settings.model_repository)
    # One registry per app: the shared request/latency/inference metrics and the CMRR's own counter.
    service_metrics = ServiceMetrics("cmrr")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_backend = backend is None
        active = instrument_backend(backend or create_backend(settings, repository), service_metrics)
        app.state.service = CmrrService(settings, cmrr, repository, active)
        await app.state.service.start()
        try:
            yield
        finally:
            await app.state.service.close()
            if own_backend:
                await active.close()

    app = FastAPI(
        title="MAAM cross-modal retrieval and recommendation",
        version="0.1",
        description="Add texts and images, retrieve the most similar content of any type, and get "
        "recommendations from a user's areas of interest (MediaVerse D3.3 section 4).",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # Every route, the original /mv_retrieval ones included, when MAAM_CMRR__API_KEY is set.
        dependencies=api_key_dependencies(cmrr.api_key, "CMRR"),
    )
    app.include_router(original.router, prefix=PREFIX)
    app.include_router(contents.router, prefix=PREFIX)
    app.include_router(health.router)
    install_error_envelope(app, STATUSES)
    app.state.metrics = service_metrics
    app.state.requests = Counter("cmrr_requests", "CMRR requests by route and status", ["route", "status"],
                                 registry=service_metrics.registry)
    app.middleware("http")(count_requests)
    add_metrics(app, service_metrics, route=False)  # routes/health.py serves the same registry
    app.add_middleware(RequestIdMiddleware)  # outermost: the id is bound for everything below
    return app
