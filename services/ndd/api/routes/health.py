"""Liveness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.ndd.api.deps import Service

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(service: Service) -> dict[str, Any]:
    return service.health()


@router.get("/metrics")
async def metrics(service: Service, request: Request) -> Response:
    service.metrics.jobs_waiting.set(service.jobs.waiting)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
