"""The annotation gRPC server: MediaAnnotationServer plus gRPC health checking and reflection."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos import media_annotation_pb2, media_annotation_pb2_grpc
from services.annotation.catalog import ModelCatalog
from services.annotation.controller import Controller
from services.annotation.options import AnnotationOptions
from services.annotation.servicer import AnnotationServicer
from services.common.inference import InferenceBackend, create_backend
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from services.common.settings import Settings, get_settings

log = logging.getLogger(__name__)

SERVICE_NAME = media_annotation_pb2.DESCRIPTOR.services_by_name["MediaAnnotationServer"].full_name


def _options(settings: Settings) -> list[tuple[str, int]]:
    max_bytes = settings.annotation.max_message_mb * 1024 * 1024
    return [("grpc.max_receive_message_length", max_bytes), ("grpc.max_send_message_length", max_bytes)]


async def build_server(
    settings: Settings,
    servicer: media_annotation_pb2_grpc.MediaAnnotationServerServicer | None = None,
    address: str | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Builds (not starts) the server; returns it with the bound port and its health servicer."""
    server = grpc.aio.server(options=_options(settings))
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
    """Waits until the backend answers (Triton may still be starting); returns its ready models."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            if isinstance(backend, OnnxBackend):
                await backend.load()  # load every session now, not on the first request
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
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer, Controller]:
    """The full service: backend, model catalog, controller and servicer behind one server."""
    repository = ModelRepository(settings.model_repository)
    backend = backend or create_backend(settings, repository)
    catalog = ModelCatalog(repository, backend, options or AnnotationOptions())
    controller = Controller(settings, catalog)
    server, port, health_servicer = await build_server(settings, AnnotationServicer(controller), address)
    return server, port, health_servicer, controller


async def serve(host: str, port: int, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    server, bound, health_servicer, controller = await build_annotation_server(settings, f"{host}:{port}")
    # Health says NOT_SERVING until the backend is up and the models are loaded.
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    backend = controller.catalog.backend
    try:
        ready = await wait_backend(backend)
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("annotation service listening on %s:%d (%s backend, models: %s)", host, bound, backend.name,
                 ", ".join(ready) or "none")
        print(f"annotation service listening on {host}:{bound}", flush=True)
        await stop.wait()
    finally:
        # Report NOT_SERVING first so balancers drain us, then let in-flight calls finish.
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=10)
        await backend.close()


def run(host: str, port: int) -> None:
    asyncio.run(serve(host, port))
