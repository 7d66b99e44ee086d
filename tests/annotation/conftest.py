"""One annotation server per test module (and backend), reached through a real gRPC channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import pytest_asyncio
from skimage import data as skdata

from protos import media_annotation_pb2_grpc as pb_grpc
from services.annotation.controller import Controller
from services.annotation.options import AnnotationOptions
from services.annotation.server import build_annotation_server, wait_backend
from services.common.inference import InferenceBackend, create_backend
from services.common.model_repository import ModelRepository
from services.common.settings import InferenceSettings, Settings
from tests.support.media import encode_image, make_video


@dataclass
class Running:
    stub: pb_grpc.MediaAnnotationServerStub
    controller: Controller
    backend: str


def service_settings(repository: Path, backend: str = "onnx", triton_url: str = "") -> Settings:
    inference = InferenceSettings(backend=backend, onnx_workers=2, **({"triton_url": triton_url} if triton_url else {}))
    return Settings(model_repository=repository, inference=inference)


@pytest_asyncio.fixture
async def start_service() -> AsyncIterator:
    """A factory: start(settings, backend=None, options=None) -> Running; stopped after the test."""
    running: list[tuple[grpc.aio.Server, grpc.aio.Channel, InferenceBackend]] = []

    async def start(
        settings: Settings, backend: InferenceBackend | None = None, options: AnnotationOptions | None = None
    ) -> Running:
        backend = backend or create_backend(settings, ModelRepository(settings.model_repository))
        server, port, _, controller = await build_annotation_server(settings, "127.0.0.1:0", backend, options)
        await server.start()
        channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        running.append((server, channel, backend))
        await wait_backend(backend, timeout_s=60)
        return Running(pb_grpc.MediaAnnotationServerStub(channel), controller, settings.inference.backend)

    yield start
    for server, channel, backend in running:
        await channel.close()
        await server.stop(None)
        await backend.close()


@pytest_asyncio.fixture(scope="module", params=["onnx", "triton"], loop_scope="session")
async def service(request: pytest.FixtureRequest, test_repository: Path) -> AsyncIterator[Running]:
    """The service on the test model repository, once per module and backend."""
    triton_url = request.getfixturevalue("triton_url") if request.param == "triton" else ""
    settings = service_settings(test_repository, request.param, triton_url)
    backend = create_backend(settings, ModelRepository(test_repository))
    server, port, _, controller = await build_annotation_server(settings, "127.0.0.1:0", backend)
    await server.start()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    )
    try:
        await wait_backend(backend, timeout_s=120)
        yield Running(pb_grpc.MediaAnnotationServerStub(channel), controller, request.param)
    finally:
        await channel.close()
        await server.stop(None)
        await backend.close()


def small(rgb: np.ndarray, side: int = 96) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(rgb)
    image.thumbnail((side, side))
    return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos from skimage.data, shrunk so the suite stays fast."""
    return {name: small(getattr(skdata, name)()) for name in ("astronaut", "chelsea", "coffee", "rocket")}


@pytest.fixture(scope="session")
def jpeg(photos: dict[str, np.ndarray]) -> bytes:
    return encode_image(photos["chelsea"])


def shots_video(images: list[np.ndarray], seconds_each: float = 1.0, fps: int = 8, side: int = 96) -> bytes:
    """One shot per image (a slight zoom each frame so frames differ), encoded as H.264 MP4."""
    import cv2

    frames = []
    for rgb in images:
        base = cv2.resize(rgb, (side, side))
        for k in range(int(seconds_each * fps)):
            zoom = 1.0 + 0.01 * k
            matrix = cv2.getRotationMatrix2D((side / 2, side / 2), 0, zoom)
            frames.append(cv2.warpAffine(base, matrix, (side, side), borderMode=cv2.BORDER_REFLECT))
    return make_video(frames, fps=fps)


@pytest.fixture(scope="session")
def video(photos: dict[str, np.ndarray]) -> bytes:
    """Three shots (astronaut, chelsea, coffee) of one second each."""
    return shots_video([photos["astronaut"], photos["chelsea"], photos["coffee"]])
