"""Prometheus metrics: a real FastAPI app and a real grpc.aio server, scraped over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from fastapi import FastAPI, HTTPException
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from services.common.inference import InvalidInputError
from services.common.inference.onnx_backend import OnnxBackend
from services.common.metrics import (
    GrpcMetricsInterceptor,
    ServiceMetrics,
    add_metrics,
    instrument_backend,
    start_metrics_http_server,
)
from services.common.model_repository import ModelRepository
from tests.support.test_models import example_inputs


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def make_app(metrics: ServiceMetrics) -> FastAPI:
    app = FastAPI()
    add_metrics(app, metrics)

    @app.get("/assets/{asset_id}")
    async def get_asset(asset_id: int) -> dict:
        if asset_id == 404:
            raise HTTPException(404, "no such asset")
        return {"id": asset_id}

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("bug")

    return app


async def test_http_requests_are_counted_by_route_template_and_status() -> None:
    metrics = ServiceMetrics("dam")
    transport = httpx.ASGITransport(app=make_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for asset_id in (1, 2, 3):
            assert (await client.get(f"/assets/{asset_id}")).status_code == 200
        assert (await client.get("/assets/404")).status_code == 404
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/boom")).status_code == 500
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    route = "/assets/{asset_id}"
    assert sample(text, "maam_http_requests_total", method="GET", route=route, status="200") == 3
    assert sample(text, "maam_http_requests_total", method="GET", route=route, status="404") == 1
    assert sample(text, "maam_http_requests_total", route="<unmatched>", status="404") == 1
    assert sample(text, "maam_http_requests_total", route="/boom", status="500") == 1
    assert sample(text, "maam_http_request_duration_seconds_count", method="GET", route=route) == 4
    assert sample(text, "maam_http_requests_in_progress", method="GET") == 0
    # /metrics itself is not counted, and one series per route template, never per raw path.
    assert sample(text, "maam_http_requests_total", route="/metrics") == 0
    assert "/assets/1" not in text
    assert sample(text, "maam_service_info", service="dam") == 1
    assert sample(text, "process_cpu_seconds_total") > 0


async def test_grpc_calls_are_counted_by_method_and_status_and_exposed_on_http() -> None:
    metrics = ServiceMetrics("annotation")
    server = grpc.aio.server(interceptors=[GrpcMetricsInterceptor(metrics)])
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    exporter = start_metrics_http_server(metrics, "127.0.0.1", 0)
    check = "/grpc.health.v1.Health/Check"
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(3):
                await stub.Check(health_pb2.HealthCheckRequest())
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.Check(health_pb2.HealthCheckRequest(service="nope"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            # A server-streaming call, counted when the client hangs up.
            watch = stub.Watch(health_pb2.HealthCheckRequest())
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await channel.unary_unary("/Nope/Missing")(b"")
            assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
        async with httpx.AsyncClient() as client:
            text = ""
            for _ in range(100):  # the Watch call ends on the server a moment after the cancel
                text = (await client.get(f"http://127.0.0.1:{exporter.port}/metrics")).text
                if sample(text, "maam_grpc_requests_total", method="/grpc.health.v1.Health/Watch") == 1:
                    break
                await asyncio.sleep(0.02)
    finally:
        exporter.close()
        await server.stop(None)
    assert sample(text, "maam_grpc_requests_total", method=check, type="unary_unary", code="OK") == 3
    assert sample(text, "maam_grpc_requests_total", method=check, code="NOT_FOUND") == 1
    assert sample(text, "maam_grpc_requests_total", method="/grpc.health.v1.Health/Watch", code="CANCELLED") == 1
    assert sample(text, "maam_grpc_requests_total", method="/Nope/Missing", code="UNIMPLEMENTED") == 1
    assert sample(text, "maam_grpc_request_duration_seconds_count", method=check) == 4
    assert sample(text, "maam_grpc_requests_in_progress", method=check) == 0


async def test_inference_time_and_failures_are_recorded_per_model(test_repository: Path) -> None:
    metrics = ServiceMetrics("annotation", process=False)
    backend = instrument_backend(OnnxBackend(ModelRepository(test_repository), workers=1), metrics)
    try:
        assert backend.name == "onnx"
        for _ in range(2):
            out = await backend.infer("test_classifier", example_inputs("test_classifier", batch=1))
            assert out["probs"].shape[0] == 1
        with pytest.raises(InvalidInputError):
            await backend.infer("test_classifier", {"images": np.zeros((1, 3, 2, 2), np.float32)})
        await backend.load(["test_unbatched"])  # backend-specific extras still reachable
    finally:
        await backend.close()
    text = metrics.exposition().decode()
    labels = {"model": "test_classifier", "backend": "onnx"}
    assert sample(text, "maam_model_inference_seconds_count", **labels) == 2
    assert sample(text, "maam_model_inference_seconds_sum", **labels) > 0
    assert sample(text, "maam_model_inference_errors_total", error="InvalidInputError", **labels) == 1


def test_queue_depth_and_backlog_gauges() -> None:
    metrics = ServiceMetrics("dam", process=False)
    queue: asyncio.Queue[int] = asyncio.Queue()
    metrics.track_queue("annotate", queue)
    for i in range(3):
        queue.put_nowait(i)
    metrics.annotation_backlog.labels(state="pending").set(7)
    text = metrics.exposition().decode()
    assert sample(text, "maam_queue_depth", queue="annotate") == 3
    assert sample(text, "maam_annotation_backlog", state="pending") == 7
    queue.get_nowait()
    assert sample(metrics.exposition().decode(), "maam_queue_depth", queue="annotate") == 2


def test_process_metrics_share_the_default_registry_with_module_level_metrics() -> None:
    from prometheus_client import REGISTRY, Counter, generate_latest

    from services.common.metrics import get_metrics

    metrics = get_metrics("unit-test-service")
    assert get_metrics("unit-test-service") is metrics and metrics.registry is REGISTRY
    try:
        legacy = Counter("maam_unit_test_legacy", "a module-level counter of some service")
        legacy.inc()
        metrics.annotation_backlog.labels(state="pending").set(3)
        text = generate_latest(REGISTRY).decode()  # what a service's own /metrics route returns
        assert sample(text, "maam_unit_test_legacy_total") == 1
        assert sample(text, "maam_annotation_backlog", state="pending") == 3
    finally:
        REGISTRY.unregister(legacy)


async def test_middleware_without_route_when_the_app_serves_metrics_itself() -> None:
    from prometheus_client import generate_latest
    from starlette.responses import Response

    metrics = ServiceMetrics("dam", process=False)
    app = FastAPI()

    @app.get("/metrics")
    async def own_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type="text/plain")

    @app.get("/ping")
    async def ping() -> dict:
        return {}

    add_metrics(app, metrics, route=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/ping")
        text = (await client.get("/metrics")).text
    assert sample(text, "maam_http_requests_total", route="/ping", status="200") == 1
    assert [r.path for r in app.routes].count("/metrics") == 1


async def test_routes_of_included_routers_are_labelled_with_their_full_template() -> None:
    # FastAPI matches included routers lazily: the label must still carry the include prefixes.
    from fastapi import APIRouter

    metrics = ServiceMetrics("dam", process=False)
    app = FastAPI()
    router = APIRouter(prefix="/assets")

    @router.get("/{asset_id}")
    async def get_asset(asset_id: int) -> dict:
        return {"id": asset_id}

    app.include_router(router, prefix="/api")
    add_metrics(app, metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/api/assets/7")).status_code == 200
        text = (await client.get("/metrics")).text
    assert sample(text, "maam_http_requests_total", method="GET", route="/api/assets/{asset_id}", status="200") == 1
    assert sample(text, "maam_http_requests_total", route="/assets/{asset_id}") == 0
