"""The annotation gRPC server: MediaAnnotationServer plus gRPC health checking and reflection, request ids
and Prometheus metrics on every call, a `/metrics` port, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos import media_annotation_pb2, media_annotation_pb2_grpc
from services.annotation.catalog import ModelCatalog
from services.annotation.controller import Controller
from services.annotation.options import AnnotationOptions, annotation_options, get_annotation_settings
from services.annotation.servicer import AnnotationServicer
from services.common.cpu_priority import lower_priority
from services.common.inference import InferenceBackend, create_backend
from services.common.inference.onnx_backend import OnnxBackend
from services.common.logging import RequestIdInterceptor
from services.common.media import apply_media_settings
from services.common.metrics import (
    GrpcMetricsInterceptor,
    ServiceMetrics,
    get_metrics,
    instrument_backend,
    start_metrics_http_server,
)
from services.common.model_repository import ModelRepository
from services.common.native_threads import limit_native_threads
from services.common.settings import Settings
from services.common.shutdown import GracefulShutdown, serve_grpc_until_signal

log = logging.getLogger(__name__)

SERVICE_NAME = media_annotation_pb2.DESCRIPTOR.services_by_name["MediaAnnotationServer"].full_name


def _options(settings: Settings) -> list[tuple[str, int]]:
    max_bytes = settings.annotation.max_message_mb * 1024 * 1024
    return [("grpc.max_receive_message_length", max_bytes), ("grpc.max_send_message_length", max_bytes)]


async def build_server(
    settings: Settings,
    servicer: media_annotation_pb2_grpc.MediaAnnotationServerServicer | None = None,
    address: str | None = None,
    metrics: ServiceMetrics | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Builds (not starts) the server; returns it with the bound port and its health servicer.
    Every call gets a request id (echoed in trailing metadata) and, with `metrics`, is counted and timed."""
    interceptors: list[grpc.aio.ServerInterceptor] = [RequestIdInterceptor()]
    if metrics is not None:
        interceptors.append(GrpcMetricsInterceptor(metrics))
    server = grpc.aio.server(interceptors=interceptors, options=_options(settings))
    media_annotation_pb2_grpc.add_MediaAnnotationServerServicer_to_server(
        servicer or media_annotation_pb2_grpc.MediaAnnotationServerServicer(), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    address = address or f"{settings.annotation.host}:{settings.annotation.port}"
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the annotation server to {address}")
    return server, port, health_servicer


async def wait_backend(backend: InferenceBackend, timeout_s: float = 120.0) -> list[str]:
    """Waits until the backend answers (Triton may still be starting) and, in process, loads the
    ONNX sessions now rather than on the first request; returns the ready models. A model that
    fails to load is logged and later reported per request as a ModelError, it does not keep the
    service down."""
    # Look through wrappers (the metrics' InstrumentedBackend) for the in-process backend.
    inner = getattr(backend, "backend", backend)
    if isinstance(inner, OnnxBackend):
        names = [
            spec.name for spec in inner.repository.installed()
            if getattr(spec.meta, "runtime", "onnxruntime") == "onnxruntime"
        ]
        for name, outcome in zip(names, await asyncio.gather(*(inner.load([n]) for n in names),
                                                             return_exceptions=True), strict=True):
            if isinstance(outcome, Exception):
                log.error("model %s could not be loaded: %s", name, outcome)
        return await backend.ready_models()
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await backend.ready_models()
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the {backend.name} inference backend is not ready: {exc}") from exc
            log.info("waiting for the %s backend: %s", backend.name, exc)
            await asyncio.sleep(1.0)


async def build_annotation_server(
    settings: Settings,
    address: str,
    backend: InferenceBackend | None = None,
    options: AnnotationOptions | None = None,
    metrics: ServiceMetrics | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer, Controller]:
    """The full service: backend, model catalog, controller and servicer behind one server. With
    `metrics`, model calls are timed, the batch queues reported and gRPC calls counted."""
    repository = ModelRepository(settings.model_repository)
    backend = backend or create_backend(settings, repository)
    if metrics is not None:
        backend = instrument_backend(backend, metrics)
    catalog = ModelCatalog(repository, backend, options or annotation_options(settings))
    controller = Controller(settings, catalog)
    if metrics is not None:
        metrics.track_queue("annotation_batch", controller.batch_queue_depth)
    server, port, health_servicer = await build_server(settings, AnnotationServicer(controller), address, metrics)
    return server, port, health_servicer, controller


async def _become_ready(backend: InferenceBackend, health_servicer: health.aio.HealthServicer, address: str) -> None:
    ready = await wait_backend(backend)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("annotation service listening on %s (%s backend, models: %s)", address, backend.name,
             ", ".join(ready) or "none")
    print(f"annotation service listening on {address}", flush=True)


async def serve(
    host: str,
    port: int,
    settings: Settings | None = None,
    *,
    metrics: ServiceMetrics | None = None,
    shutdown: GracefulShutdown | None = None,
) -> None:
    """Serves until SIGTERM/SIGINT (or `shutdown.request()`): then health says NOT_SERVING, new calls
    are refused, in-flight ones get `shutdown_grace_s` to finish, and the backend is closed."""
    settings = settings or get_annotation_settings()
    log.info("CPU priority: nice %d (MAAM_ANNOTATION__NICE)", os.getpriority(os.PRIO_PROCESS, 0))
    limit_native_threads(settings)
    apply_media_settings(settings.media)
    metrics = metrics or get_metrics("annotation")
    grace = settings.annotation.shutdown_grace_s
    shutdown = shutdown or GracefulShutdown(grace)
    server, bound, health_servicer, controller = await build_annotation_server(
        settings, f"{host}:{port}", metrics=metrics
    )
    backend = controller.catalog.backend
    exporter = None
    # Unset, the metrics port follows the gRPC port, so two instances on one machine never collide.
    metrics_port = settings.annotation.metrics_port_for(bound)
    if metrics_port:
        try:
            exporter = start_metrics_http_server(metrics, host, metrics_port)
        except OSError as exc:
            await server.stop(grace=None)
            raise OSError(f"cannot serve /metrics on {host}:{metrics_port}: {exc} "
                          "(set MAAM_ANNOTATION__METRICS_PORT to a free port, or 0 for none)") from exc
        log.info("metrics on http://%s:%d/metrics", host, exporter.port)
    # Health says NOT_SERVING until the backend is up and the models are loaded.
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    readiness = asyncio.create_task(_become_ready(backend, health_servicer, f"{host}:{bound}"), name="readiness")

    def on_ready(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            shutdown.request("the inference backend never became ready")

    readiness.add_done_callback(on_ready)

    async def on_stop() -> None:
        readiness.cancel()
        await asyncio.gather(readiness, return_exceptions=True)
        await backend.close()
        if exporter is not None:
            exporter.close()
        log.info("annotation service stopped")

    await serve_grpc_until_signal(server, health_servicer, grace_s=grace, shutdown=shutdown, on_stop=on_stop)
    failure = None if readiness.cancelled() else readiness.exception()
    if failure is not None:
        raise failure  # the backend never came up: exit non-zero


def run(host: str, port: int) -> None:
    """`maam serve annotation`: the whole process yields the CPU (MAAM_ANNOTATION__NICE); `serve` alone leaves
    the priority of a process it is embedded in as it is."""
    settings = get_annotation_settings()
    lower_priority(annotation_options(settings).nice)
    asyncio.run(serve(host, port, settings))
