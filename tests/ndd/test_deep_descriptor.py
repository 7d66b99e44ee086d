"""The deep descriptor against a real gRPC annotation server whose ImageCrossModalEmbedding runs the
`test_image_embedder` ONNX model with the onnx backend (the real annotation service is built
elsewhere; this servicer implements just the one RPC the NDD client calls)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from protos import media_annotation_pb2, media_annotation_pb2_grpc
from services.annotation.server import build_server
from services.common.inference.onnx_backend import OnnxBackend
from services.common.media import MediaError, decode_image
from services.common.model_repository import ModelRepository
from services.common.settings import Settings
from services.ndd.descriptors.deep import AnnotationEmbedder, DescriptorUnavailableError
from tests.ndd.conftest import encode, upload_images
from tests.support.processes import free_port
from tests.support.test_models import IMAGE_SIZE


class EmbeddingServicer(media_annotation_pb2_grpc.MediaAnnotationServerServicer):
    def __init__(self, backend: OnnxBackend) -> None:
        self.backend = backend

    async def ImageCrossModalEmbedding(self, request, context):
        try:
            rgb = decode_image(request.asset_data)
        except MediaError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        small = np.asarray(Image.fromarray(rgb).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR), np.float32)
        batch = (small / 255.0).transpose(2, 0, 1)[None]
        output = await self.backend.infer("test_image_embedder", {"images": batch})
        values = output["embedding"][0].tolist()
        return media_annotation_pb2.ImageCrossModalEmbeddingResponse(
            model="test_image_embedder",
            embedding=media_annotation_pb2.Embedding(values=values, dimension=len(values),
                                                     model="test_image_embedder", normalized=True),
        )


@pytest.fixture(scope="module")
def annotation_url(test_repository: Path) -> Iterator[str]:
    """A real grpc.aio server on its own event loop thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    backend = OnnxBackend(ModelRepository(test_repository), workers=1)
    address = f"127.0.0.1:{free_port()}"

    async def start() -> grpc.aio.Server:
        server, _, _ = await build_server(Settings(), EmbeddingServicer(backend), address=address)
        await server.start()
        return server

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield address
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(30)
        asyncio.run_coroutine_threadsafe(backend.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def test_client_gets_a_unit_embedding_and_reports_bad_input(annotation_url, photos):
    embedder = AnnotationEmbedder(annotation_url)
    try:
        first = await embedder.embed(encode(photos["chelsea"]))
        again = await embedder.embed(encode(photos["chelsea"]))
        other = await embedder.embed(encode(photos["coffee"]))
        assert first.shape == (16,) and abs(float(np.linalg.norm(first)) - 1) < 1e-5
        assert np.allclose(first, again, atol=1e-6) and float(first @ other) < 0.999
        with pytest.raises(ValueError, match="refused the image"):
            await embedder.embed(b"not an image")
    finally:
        await embedder.close()


async def test_client_reports_unreachable_service_and_missing_configuration():
    with pytest.raises(DescriptorUnavailableError, match="MAAM_NDD__ANNOTATION_URL"):
        AnnotationEmbedder("")
    embedder = AnnotationEmbedder(f"127.0.0.1:{free_port()}", timeout_s=5)
    try:
        with pytest.raises(DescriptorUnavailableError, match="UNAVAILABLE"):
            await embedder.embed(b"\x89PNG")
    finally:
        await embedder.close()


def test_index_and_search_with_the_deep_descriptor(make_client, annotation_url, photos):
    client = make_client(annotation_url=annotation_url)
    job = upload_images(client, {name: encode(rgb) for name, rgb in photos.items()})
    assert job["status"] == "done" and job["warnings"] == [] and len(job["indexed"]) == len(photos)
    assert client.get("/api/v1/images").json()["items"][0]["descriptors"] == ["deep", "offline"]
    response = client.post("/api/v1/images/search/upload", params={"descriptor": "deep", "t_sim": 0.0, "t_rank": 3},
                           files={"file": ("q.png", encode(photos["rocket"]), "image/png")})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["id"] == "rocket" and results[0]["score"] > 0.99
    assert all(0.0 <= r["score"] <= 1.0 for r in results) and len(results) == 3
    by_id = client.get("/api/v1/images/search/rocket", params={"descriptor": "deep", "t_sim": 0.0}).json()
    assert "rocket" not in [r["id"] for r in by_id["results"]] and len(by_id["results"]) == len(photos) - 1


def test_unavailable_annotation_service_is_reported(make_client, photos):
    client = make_client(annotation_url=f"127.0.0.1:{free_port()}", annotation_timeout_s=5)
    job = upload_images(client, {"chelsea": encode(photos["chelsea"])})
    assert job["indexed"] == ["chelsea"]  # the offline descriptor still indexes it
    [warning] = job["warnings"]
    assert "without the deep descriptor" in warning["warning"] and "UNAVAILABLE" in warning["warning"]
    response = client.post("/api/v1/images/search/upload", params={"descriptor": "deep"},
                           files={"file": ("q.png", encode(photos["chelsea"]), "image/png")})
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]
