"""Assets by URL from a real HTTP server: fetched when private addresses are allowed by
configuration, refused otherwise; a failing fetch is a clear error."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from protos import media_annotation_pb2 as pb
from services.common.settings import MediaSettings
from tests.annotation.conftest import service_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def http_root(tmp_path: Path, jpeg: bytes) -> Iterator[str]:
    (tmp_path / "cat.jpg").write_bytes(jpeg)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_url_fetched_when_private_addresses_are_allowed(start_service, test_repository, http_root) -> None:
    settings = service_settings(test_repository).model_copy(update={"media": MediaSettings(allow_private_urls=True)})
    running = await start_service(settings)
    by_url = await running.stub.ImageObjectDetection(pb.AnnotationRequest(asset_url=f"{http_root}/cat.jpg"))
    assert by_url.model == "test_detector" and (by_url.image_size.width, by_url.image_size.height) == (96, 64)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.ImageObjectDetection(pb.AnnotationRequest(asset_url=f"{http_root}/missing.jpg"))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "HTTP 404" in err.value.details()


async def test_same_url_refused_by_default(start_service, test_repository, http_root) -> None:
    running = await start_service(service_settings(test_repository))
    reply = await running.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_url=f"{http_root}/cat.jpg"))
    assert reply.status == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "not allowed" in reply.error_msg
