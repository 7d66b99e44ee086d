"""The real annotation service for the DAM tests, two ways:

- `AnnotationProcess`: `maam serve annotation` as a child process on the test model repository.
- `InProcessAnnotation`: the same service code (model catalog, controller, servicer, gRPC server) in a thread
  of the test process, so a test can hold one model back (results then visibly arrive model by model), count
  finished streams per image, and stop and restart the server on the same port.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import Counter
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.annotation.catalog import ModelCatalog
from services.annotation.controller import Controller
from services.annotation.options import AnnotationOptions
from services.annotation.server import build_server, wait_backend
from services.annotation.servicer import AnnotationServicer
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from services.common.settings import InferenceSettings, MediaSettings, Settings
from tests.support.held_backend import HeldBackend
from tests.support.processes import ServiceProcess, child_env, maam

# The test DAMs listen on free ports: the annotation service trusts the blob links of any DAM on 127.0.0.1
# (a prefix without a port matches every port), and only those, as the compose file does for http://dam:8000.
DAM_LINKS = ["http://127.0.0.1/api/blobs/"]


def serving(port: int) -> bool:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


class AnnotationProcess:
    def __init__(self, repository: Path, port: int, **env: str) -> None:
        self.repository, self.port = repository, port
        self.extra_env = env
        self.process: ServiceProcess | None = None

    def start(self) -> None:
        env = child_env(MAAM_MODEL_REPOSITORY=str(self.repository), MAAM_INFERENCE__ONNX_WORKERS="2",
                        MAAM_MEDIA__TRUSTED_URL_PREFIXES=json.dumps(DAM_LINKS), **self.extra_env)
        self.process = ServiceProcess(maam("serve", "annotation", "--port", str(self.port)), env=env)
        self.process.wait_ready(lambda: serving(self.port), timeout=120, what="maam serve annotation")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


class CountingServicer(AnnotationServicer):
    """The service's own servicer; counts image streams that ran to their end, per sha256 of the image."""

    def __init__(self, controller: Controller) -> None:
        super().__init__(controller)
        self.completed: Counter[str] = Counter()
        self.batches: list[int] = []  # images per ImageAnnotationStreamBatch call, in order of arrival

    async def ImageAnnotationStream(self, request, context):
        async for item in super().ImageAnnotationStream(request, context):
            yield item
        self.completed[hashlib.sha256(request.image_data).hexdigest()] += 1

    async def ImageAnnotationStreamBatch(self, request, context):
        self.batches.append(len(request.requests))
        async for item in super().ImageAnnotationStreamBatch(request, context):
            yield item
        for image in request.requests:
            self.completed[hashlib.sha256(image.image_data).hexdigest()] += 1


class InProcessAnnotation:
    def __init__(self, repository: Path, port: int) -> None:
        self.port = port
        self.repository = repository
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.settings = Settings(model_repository=repository, inference=InferenceSettings(onnx_workers=2),
                                 media=MediaSettings(trusted_url_prefixes=DAM_LINKS))
        self._server: grpc.aio.Server | None = None

        async def setup() -> None:
            self.backend = HeldBackend(OnnxBackend(ModelRepository(repository), workers=2))
            catalog = ModelCatalog(ModelRepository(repository), self.backend, AnnotationOptions())
            self.servicer = CountingServicer(Controller(self.settings, catalog))
            await wait_backend(self.backend, timeout_s=60)

        self._call(setup())

    def _call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> None:
        async def start() -> None:
            self._server, _, _ = await build_server(self.settings, self.servicer, f"127.0.0.1:{self.port}")
            await self._server.start()

        self._call(start())

    def stop(self) -> None:
        """Like a crash: in-flight calls are cancelled, new ones find nobody listening."""
        if self._server is not None:
            self._call(self._server.stop(grace=None))
            self._server = None

    def hold(self, *models: str) -> None:
        async def hold() -> None:
            self.backend.hold(*models)

        self._call(hold())

    def release(self) -> None:
        async def release() -> None:
            self.backend.let_go()

        self._call(release())

    @property
    def completed(self) -> Counter[str]:
        return self.servicer.completed

    @property
    def batches(self) -> list[int]:
        return self.servicer.batches

    def close(self) -> None:
        self.stop()
        self._call(self.backend.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
