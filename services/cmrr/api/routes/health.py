"""What the service serves, liveness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.cmrr.api.deps import Service

router = APIRouter(tags=["service"])


@router.get("/mv_retrieval/v0.1/info")
async def info(service: Service) -> dict:
    """Which encoders serve which types in which embedding spaces, how much is stored, which index searches it."""
    return service.info()


@router.get("/healthz")
async def healthz(service: Service) -> dict:
    return {"status": "ok", "modalities": list(service.encoders.modalities)}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
