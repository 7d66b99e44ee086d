"""The FastAPI application: REST API under /api, /healthz, /metrics, OpenAPI at /docs, web UI at / (later)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.common.http_errors import ERROR_RESPONSES, install_error_envelope
from services.common.logging import RequestIdMiddleware
from services.common.metrics import add_metrics, get_metrics
from services.dam.api.headers import NoSniffMiddleware
from services.dam.api.routes import (
    assets,
    auth,
    blobs,
    bulk,
    capabilities,
    detectors,
    events,
    health,
    moderation,
    people,
    projects,
    search,
    zeroshot_labels,
)
from services.dam.api.validation import DEFAULT_MAX_BODY
from services.dam.context import DamContext
from services.dam.core.config import DamSettings, get_dam_settings
from services.dam.core.priority import Foreground, ForegroundMiddleware
from services.dam.duplicates import routes as duplicates
from services.dam.ui import mount_ui

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"  # the web UI (issue 6) renders from here
STATIC_DIR = HERE / "static"


def create_app(settings: DamSettings | None = None, background: bool = True) -> FastAPI:
    settings = settings or get_dam_settings()
    foreground = Foreground(settings.dam.annotation_yield_ms / 1000)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await DamContext.open(settings)
        ctx.events.start()
        if background:
            ctx.start_background(foreground)
        app.state.ctx = ctx
        try:
            yield
        finally:
            await ctx.close()

    # Bodies are capped while they stream in: this default for the JSON routes, larger caps on the routes
    # that take files (their `max_body_size`).
    app = FastAPI(title="MAAM DAM", version="0.1.0", lifespan=lifespan, responses=ERROR_RESPONSES,
                  max_body_size=DEFAULT_MAX_BODY,
                  description="Digital Asset Management: assets, asynchronous annotation, search, projects, "
                              "user-made detectors.")
    for module in (auth, bulk, assets, search, projects, detectors, zeroshot_labels, blobs, people, capabilities,
                   moderation, duplicates, events):
        app.include_router(module.router, prefix="/api")
    app.include_router(health.router)
    install_error_envelope(app)  # {"detail": str, "status": int}, as the OpenAPI schema publishes it
    mount_ui(app)  # the web UI: pages at /, static files, /api/ui helpers
    # /metrics (routes/health.py) already serves the default registry, where get_metrics("dam") lives.
    add_metrics(app, get_metrics("dam"), route=False)
    app.add_middleware(NoSniffMiddleware)
    app.add_middleware(ForegroundMiddleware, foreground=foreground)  # annotation workers defer to requests
    app.add_middleware(RequestIdMiddleware)  # outermost: the id is bound for everything below
    return app
