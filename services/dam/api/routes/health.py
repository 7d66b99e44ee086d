"""Liveness/readiness and admin maintenance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from services.dam.api.deps import AdminUser, Ctx
from services.dam.gc import collect_garbage

router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz(ctx: Ctx) -> dict:
    try:
        async with ctx.db.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
    return {"status": "ok", "search_backend": ctx.backend.name, "annotation_service": ctx.client.target}


@router.get("/metrics", tags=["health"], include_in_schema=False)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.post("/api/admin/gc", tags=["admin"])
async def gc(ctx: Ctx, _: AdminUser,
             grace_s: Annotated[float | None, Query(ge=0, le=10 * 365 * 86400, allow_inf_nan=False)] = None,
             ) -> dict[str, int]:
    """Purges soft-deleted assets older than the grace period and the blobs nothing references; sweeps
    blobs no row references and temporary files idle for the grace period."""
    return await collect_garbage(ctx, grace_s)
