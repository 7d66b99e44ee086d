"""NDD test fixtures: real photos, tiny videos made with PyAV, a real static HTTP server on
127.0.0.1, and the NDD app over a temporary data directory."""

from __future__ import annotations

import functools
import http.server
import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import skimage.data as data
from fastapi.testclient import TestClient
from PIL import Image

from services.common.settings import MediaSettings, Settings
from services.ndd.app import create_app
from services.ndd.core.config import NddSettings


def encode(rgb: np.ndarray, fmt: str = "PNG", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    return {
        "astronaut": data.astronaut(),
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "motorcycle": data.stereo_motorcycle()[0],
        "immunohistochemistry": data.immunohistochemistry(),
    }


def _pan(photo: np.ndarray, t: float, size: tuple[int, int]) -> np.ndarray:
    """A frame of a slow pan over a photo (t in [0, 1])."""
    height, width = photo.shape[:2]
    crop_h, crop_w = int(height * 0.8), int(width * 0.8)
    y = int((height - crop_h) * t)
    x = int((width - crop_w) * (1 - t))
    window = Image.fromarray(np.ascontiguousarray(photo[y : y + crop_h, x : x + crop_w]))
    return np.asarray(window.resize(size, Image.BILINEAR))


def make_video(shots: list[tuple[np.ndarray, float]], fps: int = 8, size: tuple[int, int] = (128, 96),
               start: float = 0.0, end: float | None = None) -> bytes:
    """An MP4 of shots (photo, seconds), each a pan; only [start, end) seconds are written."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        t0 = 0.0
        for photo, seconds in shots:
            frames = round(seconds * fps)
            for i in range(frames):
                now = t0 + i / fps
                if now + 1e-9 < start or (end is not None and now + 1e-9 >= end):
                    continue
                frame = av.VideoFrame.from_ndarray(_pan(photo, i / max(1, frames - 1), size), format="rgb24")
                container.mux(stream.encode(frame))
            t0 += seconds
        container.mux(stream.encode(None))
    return buffer.getvalue()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a temp directory; yields (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """Builds NDD apps over tmp data dirs; `allow_private` enables 127.0.0.1 URLs explicitly."""
    clients: list[TestClient] = []

    def factory(data_dir: Path | None = None, allow_private: bool = False, **ndd: Any) -> TestClient:
        media = MediaSettings(allow_private_urls=allow_private)
        settings = Settings(data_dir=data_dir or tmp_path / "data", media=media)
        client = TestClient(create_app(settings, NddSettings(**ndd)))
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


def wait_job(client: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not finish in {timeout} s")


def upload_images(client: TestClient, images: dict[str, bytes], collection_id: str = "default") -> dict[str, Any]:
    files = [("files", (f"{name}.bin", blob, "application/octet-stream")) for name, blob in images.items()]
    response = client.post("/api/v1/images/jobs/upload", files=files,
                           data={"ids": list(images), "collection_id": collection_id})
    assert response.status_code == 202, response.text
    return wait_job(client, response.json()["job_id"])


def make_pip_video(shots: list[tuple[np.ndarray, float]], background: np.ndarray, box: tuple[int, int, int, int],
                   fps: int = 8, size: tuple[int, int] = (256, 144), start: float = 0.0, end: float | None = None,
                   border: int = 0, moving_background: bool = True) -> bytes:
    """A picture-in-picture MP4: seconds [start, end) of the pans over `shots` scaled into `box`
    (x, y, width, height) of a `size` frame over a pan over `background` (or its still first frame),
    inside a white border of `border` px."""
    x, y, width, height = box
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        total = sum(seconds for _, seconds in shots)
        end = total if end is None else end
        t0 = 0.0
        for photo, seconds in shots:
            frames = round(seconds * fps)
            for i in range(frames):
                now = t0 + i / fps
                if now + 1e-9 < start or now + 1e-9 >= end:
                    continue
                t = (now - start) / max(1e-9, end - start) if moving_background else 0.0
                frame = _pan(background, t, size).copy()
                if border:
                    frame[y - border : y + height + border, x - border : x + width + border] = 255
                frame[y : y + height, x : x + width] = _pan(photo, i / max(1, frames - 1), (width, height))
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            t0 += seconds
        container.mux(stream.encode(None))
    return buffer.getvalue()
