"""A real CMRR HTTP server (uvicorn in a thread, free port) over the tiny test models."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image

from services.cmrr.app import create_app
from services.cmrr.core.config import CmrrSettings
from services.common.settings import Settings
from tests.support.processes import free_port, wait_until

PREFIX = "/mv_retrieval/v0.1"


class LiveServer:
    def __init__(self, settings: Settings, cmrr: CmrrSettings) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(settings, cmrr), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), timeout=60, what="cmrr server")
        if not self.server.started:
            raise RuntimeError("the cmrr server did not start")
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url + PREFIX, timeout=60)

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)


StartServer = Callable[..., LiveServer]


@pytest.fixture
def start_server(tmp_path: Path, test_repository: Path) -> Iterator[StartServer]:
    servers: list[LiveServer] = []

    def start(
        repository: Path | None = None, data_dir: Path | None = None, backend: str = "onnx",
        triton_url: str = "127.0.0.1:8001", **cmrr: object,
    ) -> LiveServer:
        settings = Settings(
            data_dir=data_dir or tmp_path / "data",
            model_repository=repository or test_repository,
            inference_backend=backend,
            triton_url=triton_url,
            onnx_workers=2,
        )
        server = LiveServer(settings, CmrrSettings(**cmrr))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> LiveServer:
    return start_server()


def image_bytes(name: str, fmt: str = "PNG", size: int = 96) -> bytes:
    """A real photo from skimage.data, downscaled (the test encoder takes 32x32)."""
    import skimage.data

    array = getattr(skimage.data, name)()
    image = Image.fromarray(array).convert("RGB")
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def noise_image(seed: int, size: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def add(server: LiveServer, content_id: str, kind: str, user: str, body: bytes) -> httpx.Response:
    return server.client.post("/add_content", params={"id": content_id, "type": kind, "user": user}, content=body)
