"""The deep descriptor against a real gRPC annotation server whose ImageCrossModalEmbedding runs the
`test_image_embedder` (16-d) or `test_visual_embedder` (24-d: another space, as the offline visual embedding
beside CLIP) ONNX model with the onnx backend (the real annotation service is built elsewhere; this servicer
implements just the one RPC the NDD client calls, picking the model as the service does)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

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
from tests.support.test_models import IMAGE_SIZE, VISUAL_DIM, write_test_repository, write_visual_embedder

DEFAULT_MODEL = "test_image_embedder"


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
        model = request.model or DEFAULT_MODEL
        output = await self.backend.infer(model, {"images": batch})
        values = output["embedding"][0].tolist()
        return media_annotation_pb2.ImageCrossModalEmbeddingResponse(
            model=model,
            embedding=media_annotation_pb2.Embedding(values=values, dimension=len(values), model=model,
                                                     normalized=True),
        )


@pytest.fixture(scope="module")
def annotation_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real grpc.aio server on its own event loop thread, with two image embeddings of two dimensions."""
    repository = write_visual_embedder(write_test_repository(tmp_path_factory.mktemp("two_spaces")))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    backend = OnnxBackend(ModelRepository(repository), workers=1)
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
        assert first.space == DEFAULT_MODEL
        assert first.vector.shape == (16,) and abs(float(np.linalg.norm(first.vector)) - 1) < 1e-5
        assert np.allclose(first.vector, again.vector, atol=1e-6) and float(first.vector @ other.vector) < 0.999
        with pytest.raises(ValueError, match="refused the image"):
            await embedder.embed(b"not an image")
    finally:
        await embedder.close()


async def test_client_reports_unreachable_service_and_missing_configuration():
    with pytest.raises(DescriptorUnavailableError, match="MAAM_NDD_ANNOTATION_URL"):
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
    assert response.json()["descriptor"] == "deep" and response.json()["space"] == DEFAULT_MODEL
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


def test_two_embedding_spaces_coexist_without_a_reset(make_client, annotation_url, photos, tmp_path):
    """Switching the embedding model keeps the data: new items go to the new space, each search names the
    space it searched, and vectors of the 16-d and 24-d spaces are never compared."""
    data_dir = tmp_path / "spaces"
    first, second = ("astronaut", "chelsea", "coffee"), ("rocket", "motorcycle", "immunohistochemistry")
    old = make_client(data_dir=data_dir, annotation_url=annotation_url)
    upload_images(old, {name: encode(photos[name]) for name in first})
    old.__exit__(None, None, None)

    new = make_client(data_dir=data_dir, annotation_url=annotation_url, annotation_model="test_visual_embedder")
    job = upload_images(new, {name: encode(photos[name]) for name in second})
    assert job["status"] == "done" and job["warnings"] == []
    params = {"descriptor": "deep", "t_sim": 0.0, "t_rank": 10}
    by_upload = new.post("/api/v1/images/search/upload", params=params,
                         files={"file": ("q.png", encode(photos["rocket"]), "image/png")}).json()
    assert by_upload["space"] == "test_visual_embedder"
    assert {r["id"] for r in by_upload["results"]} == set(second) and by_upload["results"][0]["id"] == "rocket"
    by_old_id = new.get("/api/v1/images/search/chelsea", params=params).json()
    assert by_old_id["space"] == DEFAULT_MODEL and {r["id"] for r in by_old_id["results"]} == {"astronaut", "coffee"}
    by_new_id = new.get("/api/v1/images/search/rocket", params=params).json()
    assert by_new_id["space"] == "test_visual_embedder"
    assert {r["id"] for r in by_new_id["results"]} == {"motorcycle", "immunohistochemistry"}
    offline = new.get("/api/v1/images/search/rocket", params={"t_sim": 0.0, "t_rank": 10}).json()
    assert offline["space"] == "offline" and len(offline["results"]) == 5  # one space for every item
    indexes = {(i["descriptor"], i["space"]): (i["vectors"], i["dimension"])
               for i in new.get("/api/v1/collections/default").json()["indexes"] if i["media_type"] == "image"}
    assert indexes[("deep", DEFAULT_MODEL)] == (3, 16)
    assert indexes[("deep", "test_visual_embedder")] == (3, VISUAL_DIM)
