"""Prometheus metrics that matter for MAAM: requests and latencies (HTTP and gRPC), model inference
time and failures, queue depth and the annotation backlog.

Each service process makes one `ServiceMetrics` (its own registry, so tests can make many) and
hands it to:
- FastAPI services: `add_metrics(app, metrics)` -> ASGI middleware + `GET /metrics`;
- the gRPC service: `grpc.aio.server(interceptors=[GrpcMetricsInterceptor(metrics)])` and
  `start_metrics_http_server(metrics, host, port)` for a `/metrics` port beside gRPC;
- inference: `instrument_backend(create_backend(settings), metrics)` times every `infer` call;
- queues: `metrics.track_queue("annotate", asyncio_queue)` or `metrics.queue_depth.labels(...).set(n)`;
- the outbox: `metrics.annotation_backlog.labels(state="pending").set(n)`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from threading import Thread
from typing import Any

import grpc
import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
    start_http_server,
)

from services.common.grpc_wrap import WrappedHandlers, rpc_kind
from services.common.inference.base import InferenceBackend

# Request latencies: 5 ms .. 2 min (an annotation of a long video is slow by nature).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# One model call: 1 ms .. 30 s.
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
UNMATCHED_ROUTE = "<unmatched>"


class ServiceMetrics:
    """Every metric of one service process, in one registry."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry()
        if process:
            # CPU, memory, open files, GC: what the default registry has, in ours.
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        r = self.registry
        Info("maam_service", "The MAAM service this process runs.", registry=r).info({"service": service})
        self.http_requests = Counter(
            "maam_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "maam_http_request_duration_seconds",
            "Time to answer an HTTP request (until the body is sent).",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.http_in_progress = Gauge(
            "maam_http_requests_in_progress", "HTTP requests being answered.", ["method"], registry=r
        )
        self.grpc_requests = Counter(
            "maam_grpc_requests", "gRPC calls finished, by status code.", ["method", "type", "code"], registry=r
        )
        self.grpc_latency = Histogram(
            "maam_grpc_request_duration_seconds",
            "Time from the start of a gRPC call to its end (last message for streams).",
            ["method", "type"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.grpc_in_progress = Gauge(
            "maam_grpc_requests_in_progress", "gRPC calls in flight.", ["method"], registry=r
        )
        self.inference_latency = Histogram(
            "maam_model_inference_seconds",
            "Time of one model call through the inference backend (successful calls).",
            ["model", "backend"],
            buckets=INFERENCE_BUCKETS,
            registry=r,
        )
        self.inference_errors = Counter(
            "maam_model_inference_errors", "Model calls that failed, by error class.", ["model", "backend", "error"],
            registry=r,
        )
        self.queue_depth = Gauge("maam_queue_depth", "Items waiting in an in-process queue.", ["queue"], registry=r)
        self.annotation_backlog = Gauge(
            "maam_annotation_backlog",
            "Assets waiting for annotation in the outbox, by state (pending, claimed, failed).",
            ["state"],
            registry=r,
        )

    # -- helpers --------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)

    def track_queue(self, name: str, queue: asyncio.Queue | Callable[[], float]) -> None:
        """Reports a queue's size whenever /metrics is scraped (no polling loop needed)."""
        size = queue.qsize if isinstance(queue, asyncio.Queue) else queue
        self.queue_depth.labels(queue=name).set_function(lambda: float(size()))

    @contextmanager
    def time_inference(self, model: str, backend: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self.inference_errors.labels(model=model, backend=backend, error=type(exc).__name__).inc()
            raise
        self.inference_latency.labels(model=model, backend=backend).observe(time.perf_counter() - start)


@lru_cache
def get_metrics(service: str) -> ServiceMetrics:
    """The process-wide metrics of `service`, in prometheus_client's default registry, so metrics a
    service declares at module level (`Counter(...)` without `registry=`) are exposed beside these.
    Tests make their own `ServiceMetrics(name)` instead, each with a registry of its own."""
    # The default registry already holds the process, platform and GC collectors.
    return ServiceMetrics(service, registry=REGISTRY, process=False)


# --- inference ----------------------------------------------------------------------------------


class InstrumentedBackend(InferenceBackend):
    """An inference backend whose every `infer` call is timed (and failures counted) per model."""

    def __init__(self, backend: InferenceBackend, metrics: ServiceMetrics) -> None:
        self.backend = backend
        self.metrics = metrics
        self.name = backend.name
        self._latency: dict[str, Any] = {}  # the histogram child of each model (a label lookup saved per call)

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        try:
            result = await self.backend.infer(model, inputs, outputs)
        except BaseException as exc:
            self.metrics.inference_errors.labels(model=model, backend=self.name, error=type(exc).__name__).inc()
            raise
        latency = self._latency.get(model)
        if latency is None:
            latency = self._latency[model] = self.metrics.inference_latency.labels(model=model, backend=self.name)
        latency.observe(time.perf_counter() - start)
        return result

    async def ready_models(self) -> list[str]:
        return await self.backend.ready_models()

    async def close(self) -> None:
        await self.backend.close()

    def __getattr__(self, item: str) -> Any:
        # Backend-specific extras (OnnxBackend.load, TritonBackend.server_ready, ...).
        return getattr(self.backend, item)


def instrument_backend(backend: InferenceBackend, metrics: ServiceMetrics) -> InferenceBackend:
    return backend if isinstance(backend, InstrumentedBackend) else InstrumentedBackend(backend, metrics)


# --- HTTP (ASGI / FastAPI) ----------------------------------------------------------------------

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def _route_label(scope: Scope) -> str:
    # The route template (/api/assets/{asset_id}), never the raw path: one series per route, not per id.
    # FastAPI (0.16x) matches included routers lazily: `scope["route"]` is then the router's own route,
    # without the include prefix, and the full template is in its effective route context.
    fastapi_scope = scope.get("fastapi")
    context = fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    path = getattr(context, "path_format", None)
    if not isinstance(path, str):
        route = scope.get("route")
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class PrometheusMiddleware:
    """ASGI middleware counting requests by method, route template and status, and timing them."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, skip_paths: Sequence[str] = ("/metrics",)) -> None:
        self.app = app
        self.metrics = metrics
        self.skip_paths = frozenset(skip_paths)

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("path") in self.skip_paths:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        status = 500  # what the client sees when the app raises before answering
        start = time.perf_counter()
        in_progress = self.metrics.http_in_progress.labels(method=method)
        in_progress.inc()

        async def send_with_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_progress.dec()
            route = _route_label(scope)
            self.metrics.http_requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.http_latency.labels(method=method, route=route).observe(time.perf_counter() - start)


def add_metrics(app: Any, metrics: ServiceMetrics, path: str = "/metrics", *, route: bool = True) -> None:
    """Adds the middleware and a `GET /metrics` route to a FastAPI app (call before it starts).
    `route=False` when the app already serves `path` itself from the same registry."""
    from starlette.responses import Response

    app.add_middleware(PrometheusMiddleware, metrics=metrics, skip_paths=(path,))
    if not route:
        return

    async def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(path, metrics_endpoint, methods=["GET"], include_in_schema=False)


# --- gRPC (grpc.aio) ----------------------------------------------------------------------------


def _code_name(code: Any) -> str:
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status.name
    return grpc.StatusCode.OK.name if code is None else str(code)


class GrpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every gRPC call by method, kind and final status code, and times it."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self._wrapped = WrappedHandlers()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            # gRPC answers UNIMPLEMENTED itself; count it here, where it is still visible.
            self.metrics.grpc_requests.labels(method=method, type="unknown", code="UNIMPLEMENTED").inc()
            return handler
        return self._wrapped.get(handler, lambda: self._around(method, rpc_kind(handler)))

    def _around(self, method: str, kind: str) -> Callable[[grpc.aio.ServicerContext], Any]:
        metrics = self.metrics
        in_progress = metrics.grpc_in_progress.labels(method=method)
        latency = metrics.grpc_latency.labels(method=method, type=kind)

        @contextmanager
        def around(context: grpc.aio.ServicerContext) -> Iterator[None]:
            start = time.perf_counter()
            in_progress.inc()
            code = "OK"
            try:
                yield
                code = _code_name(context.code())
            except grpc.aio.AbortError:
                code = _code_name(context.code())
                raise
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED.name
                raise
            except BaseException:
                code = grpc.StatusCode.UNKNOWN.name
                raise
            finally:
                in_progress.dec()
                metrics.grpc_requests.labels(method=method, type=kind, code=code).inc()
                latency.observe(time.perf_counter() - start)

        return around


@dataclass
class MetricsHttpServer:
    """A `/metrics` HTTP endpoint on its own thread, for processes that serve only gRPC."""

    server: Any
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_http_server(metrics: ServiceMetrics, host: str = "0.0.0.0", port: int = 9464) -> MetricsHttpServer:
    """Serves `metrics` at http://host:port/metrics (port 0 picks a free one; see `.port`)."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsHttpServer(server, thread)
