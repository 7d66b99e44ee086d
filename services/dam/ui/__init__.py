"""The web UI (issue 6): a single page of plain ES modules served at `/`, plus two read-only helper
endpoints the pages need and the REST API lacks (card summaries, the saliency picture)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.dam.ui import pages, summaries


def mount_ui(app: FastAPI) -> None:
    """Pages at `/`, static files at `/static`, helper endpoints under `/api/ui`."""
    app.include_router(summaries.router, prefix="/api")
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
