"""What a fresh install offers with the shipped offline models only (no `pull`): the features built on an image
embedding work across the DAM, NDD and CMRR on real photos with the packaged `visual_opennsfw` embedding, and
the one thing that needs CLIP (text to image) says so and names the pull."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from services.cmrr.core.config import CmrrSettings
from services.common.settings import InferenceSettings, Settings, get_settings
from services.models.packaged.install import install_packaged
from services.ndd.descriptors.deep import AnnotationEmbedder
from tests.cmrr.conftest import LiveServer
from tests.dam.annotation_server import AnnotationProcess
from tests.dam.conftest import fresh_database, start_dam, upload, wait_annotated
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

MODEL = "visual_opennsfw"


def _photos() -> dict[str, np.ndarray]:
    left, right, _ = skdata.stereo_motorcycle()
    photos = {name: getattr(skdata, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")}
    photos["camera"] = np.stack([skdata.camera()] * 3, axis=-1)
    photos["motorcycle_left"], photos["motorcycle_right"] = left, right
    return photos


PHOTOS = _photos()


def jpeg(pixels: np.ndarray, box: tuple[int, int, int, int] | None = None) -> bytes:
    image = Image.fromarray(pixels).convert("RGB")
    if box is not None:
        image = image.crop(box)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def offline_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the packaged visual embedding: what `install-shipped` gives for every embedding feature."""
    root = tmp_path_factory.mktemp("offline")
    installed, kept, failed = install_packaged(root, Path(get_settings().cache_dir), names=(MODEL,), report=print)
    assert not failed, failed
    assert [*installed, *kept] == [MODEL]
    return root


@pytest.fixture(scope="module")
def annotation(offline_repository: Path) -> Iterator[AnnotationProcess]:
    server = AnnotationProcess(offline_repository, free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def library(tmp_path_factory, pg_server_uri: str, annotation: AnnotationProcess, offline_repository: Path):
    dam = start_dam(tmp_path_factory.mktemp("dam-offline"), pg_server_uri, annotation.port, offline_repository,
                    database_url=fresh_database(pg_server_uri), MAAM_DAM__MAX_UPLOAD_MB="8")
    client = dam.user("owner@example.org")
    ids = {}
    for name, pixels in PHOTOS.items():
        reply = upload(client, jpeg(pixels), name=f"{name}.jpg", title=name)
        assert reply.status_code == 201, reply.text
        ids[name] = reply.json()["id"]
    for asset_id in ids.values():
        wait_annotated(client, asset_id, timeout=120)
    yield client, ids
    client.close()
    dam.process.stop()


def ranked(reply) -> list[int]:
    assert reply.status_code == 200, reply.text
    return [hit["asset"]["id"] for hit in reply.json()["hits"]]


def test_find_similar_ranks_the_other_view_of_the_motorcycle_first(library) -> None:
    client, ids = library
    reply = client.get("/api/search", params={"similar_to": ids["motorcycle_left"]})
    assert ranked(reply)[0] == ids["motorcycle_right"]
    assert reply.json()["space"] == MODEL


def test_a_drawn_region_searches_by_its_own_content(library) -> None:
    client, ids = library
    # The motorcycle's region of the left view (its middle third, where the machine stands) finds the
    # right view first; the whole astronaut photo, drawn as a region, finds itself.
    region = client.get("/api/search", params={"similar_to": ids["motorcycle_left"], "box": "0.2,0.2,0.8,0.9"})
    found = ranked(region)
    assert found[0] in {ids["motorcycle_left"], ids["motorcycle_right"]}
    assert {ids["motorcycle_left"], ids["motorcycle_right"]} <= set(found[:2])
    flag = client.get("/api/search", params={"similar_to": ids["astronaut"], "box": "0.0,0.0,0.35,0.5"})
    whole = client.get("/api/search", params={"similar_to": ids["astronaut"], "box": "0,0,1,1"})
    assert ranked(whole)[0] == ids["astronaut"] and whole.json()["hits"][0]["score"] > 0.99
    # The flag's corner is its own query: of the library's seven photos the astronaut, the only one showing that
    # flag, comes first and well clear of the unrelated ones (measured: 0.737, then coffee 0.635), and far below
    # the whole photo's self-match, so it is the corner that was embedded.
    hits = flag.json()["hits"]
    assert ranked(flag)[0] == ids["astronaut"]
    assert hits[0]["score"] - hits[1]["score"] > 0.05 and hits[0]["score"] < 0.9
    # A photo of just that corner, uploaded: the region query finds it first, above the photo it was cut from,
    # while the whole-photo query keeps the astronaut first (measured: 0.997 against 0.737; whole: 1.0, the
    # corner 0.73).
    height, width = PHOTOS["astronaut"].shape[:2]
    reply = upload(client, jpeg(PHOTOS["astronaut"], (0, 0, int(0.35 * width), int(0.5 * height))),
                   name="flag-corner.jpg", title="corner")
    assert reply.status_code == 201, reply.text
    corner = reply.json()["id"]
    try:
        wait_annotated(client, corner, timeout=120)
        again = client.get("/api/search", params={"similar_to": ids["astronaut"], "box": "0.0,0.0,0.35,0.5"})
        assert ranked(again)[:2] == [corner, ids["astronaut"]] and again.json()["hits"][0]["score"] > 0.95
        whole_again = ranked(client.get("/api/search", params={"similar_to": ids["astronaut"], "box": "0,0,1,1"}))
        assert whole_again[0] == ids["astronaut"] and corner in whole_again[1:]
    finally:
        assert client.delete(f"/api/assets/{corner}").status_code == 204  # the other tests see the seven photos


def test_a_detector_made_from_anchor_crops_finds_the_motorcycles(library) -> None:
    client, ids = library
    height, width = PHOTOS["motorcycle_right"].shape[:2]
    anchor = jpeg(PHOTOS["motorcycle_right"], (width // 5, height // 5, width * 4 // 5, height * 9 // 10))
    created = client.post("/api/detectors", data={"name": "Motorbike"}, files=[("anchors", ("m.jpg", anchor))])
    assert created.status_code == 201, created.text
    detector = created.json()
    assert detector["model"] == MODEL
    matches = client.get(f"/api/detectors/{detector['id']}/matches", params={"all_assets": True}).json()
    assert {m["asset_id"] for m in matches[:2]} == {ids["motorcycle_left"], ids["motorcycle_right"]}


def test_text_to_image_needs_clip_and_says_which_pull(library) -> None:
    client, _ = library
    reply = client.get("/api/search", params={"q": "a motorcycle", "semantic": True})
    assert reply.status_code == 409
    assert "maam models pull clip_vit_b32" in reply.json()["detail"]


def test_ndd_deep_descriptor_through_the_annotation_service(annotation: AnnotationProcess) -> None:
    async def embeddings() -> dict:
        embedder = AnnotationEmbedder(f"127.0.0.1:{annotation.port}")
        try:
            return {name: await embedder.embed(jpeg(PHOTOS[name]))
                    for name in ("motorcycle_left", "motorcycle_right", "chelsea", "coffee")}
        finally:
            await embedder.close()

    found = asyncio.run(embeddings())
    assert {e.space for e in found.values()} == {MODEL}  # NDD keys its spaces by the model, as the DAM does
    got = {name: np.asarray(e.vector) for name, e in found.items()}
    assert all(abs(float(np.linalg.norm(v)) - 1.0) < 1e-3 for v in got.values())
    same = float(got["motorcycle_left"] @ got["motorcycle_right"])
    assert same > max(float(got["motorcycle_left"] @ got[other]) for other in ("chelsea", "coffee"))


def test_cmrr_image_to_image_with_the_offline_embedding(offline_repository: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, model_repository=offline_repository,
                        inference=InferenceSettings(backend="onnx", onnx_workers=2))
    server = LiveServer(settings, CmrrSettings())
    try:
        for name in ("motorcycle_right", "astronaut", "chelsea", "coffee", "rocket", "camera"):
            added = server.client.post("/add_content", params={"id": name, "type": "image", "user": "bob"},
                                       content=jpeg(PHOTOS[name]))
            assert added.status_code == 200, added.text
        reply = server.client.post("/retrieve_contents", params={"user": "carol", "type": "image", "k": 3},
                                   content=jpeg(PHOTOS["motorcycle_left"]))
        assert reply.status_code == 200, reply.text
        assert reply.json()["image"]["contents"][0] == "motorcycle_right"
        assert json.loads(reply.headers["x-maam-spaces"]) == {"image": MODEL}
    finally:
        server.stop()
