"""The annotation server's gRPC health follows the service's life, as `serve()` runs it: NOT_SERVING while the
models load, SERVING once they are loaded, NOT_SERVING again when it is asked to stop; and it lists its services
by reflection."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.annotation.server import SERVICE_NAME, serve
from services.common.inference.onnx_backend import OnnxBackend
from services.common.metrics import ServiceMetrics
from services.common.shutdown import GracefulShutdown
from tests.annotation.conftest import service_settings
from tests.support.processes import free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(health: health_pb2_grpc.HealthStub, service: str) -> int:
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), wait_for_ready=True, timeout=30)
    return reply.status


async def test_health_follows_loading_and_shutdown(test_repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The models load only when the test lets them: the moment the service may say SERVING is the test's to pick.
    loading = threading.Event()
    create_session = OnnxBackend._create_session

    def held_create_session(self: OnnxBackend, spec):
        assert loading.wait(60), "the test never let the models load"
        return create_session(self, spec)

    monkeypatch.setattr(OnnxBackend, "_create_session", held_create_session)
    settings = service_settings(test_repository)
    settings = settings.model_copy(update={"annotation": settings.annotation.model_copy(update={"metrics_port": 0})})
    port, shutdown = free_port(), GracefulShutdown(5.0)
    # Metrics of its own: the process-wide registry takes one service's metrics once.
    metrics = ServiceMetrics("annotation")
    nice_before = os.getpriority(os.PRIO_PROCESS, 0)
    service = asyncio.create_task(serve("127.0.0.1", port, settings, metrics=metrics, shutdown=shutdown))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert await _status(health, SERVICE_NAME) == NOT_SERVING  # models still loading
            assert await _status(health, "") == NOT_SERVING
            watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            assert (await watch.read()).status == NOT_SERVING

            loading.set()
            assert (await asyncio.wait_for(watch.read(), 60)).status == SERVING
            # Embedded, `serve` leaves the host process's priority alone (only `maam serve annotation` yields).
            assert os.getpriority(os.PRIO_PROCESS, 0) == nice_before
            assert await _status(health, "") == SERVING

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            services = set()
            async for response in reflection.ServerReflectionInfo(iter([request])):
                services |= {s.name for s in response.list_services_response.service}
            assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services

            shutdown.request("the test is over")
            assert (await asyncio.wait_for(watch.read(), 30)).status == NOT_SERVING
            watch.cancel()
        await asyncio.wait_for(service, 30)  # and serve() returns
    finally:
        loading.set()
        if not service.done():
            shutdown.request("the test failed")
            await asyncio.gather(service, return_exceptions=True)
