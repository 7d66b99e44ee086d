"""Several embedding spaces coexist: the offline-style image-only embedding (24-d) serves image to image alone;
installing a cross-modal model (16-d) later needs no reset (what is stored is encoded into the new space from
the database); every answer names the space it searched; two spaces are never compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cmrr.conftest import StartServer, add, image_bytes, noise_image
from tests.support.processes import wait_until
from tests.support.test_models import write_visual_embedder

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@pytest.fixture(scope="module")
def visual_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_visual_embedder(tmp_path_factory.mktemp("visual_only"))


@pytest.fixture(scope="module")
def both(test_repository: Path, visual_only: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("both")
    for name in ("test_image_embedder", "test_text_embedder"):
        shutil.copytree(test_repository / name, root / name)
    shutil.copytree(visual_only / "test_visual_embedder", root / "test_visual_embedder")
    return root


def retrieve(server, user: str, kind: str, body: bytes, k: int = 3, **params: str):
    return server.client.post("/retrieve_contents", params={"user": user, "type": kind, "k": k, **params},
                              content=body)


def test_image_to_image_with_the_image_only_embedding(start_server: StartServer, visual_only: Path) -> None:
    server = start_server(repository=visual_only)
    encoders = server.client.get("/info").json()["encoders"]
    assert encoders["modalities"] == ["image"] and encoders["cross_modal"] is False
    assert [s["space"] for s in encoders["spaces"]] == ["test-visual"]
    for name in PHOTOS:
        assert add(server, f"i-{name}", "image", "bob", image_bytes(name)).status_code == 200
    response = retrieve(server, "carol", "image", image_bytes("coffee"))
    assert response.status_code == 200
    assert response.json()["image"]["contents"][0] == "i-coffee"
    assert response.json()["text"] == {"contents": [], "scores": []}
    assert json.loads(response.headers["x-maam-spaces"]) == {"image": "test-visual"}
    assert any("needs a cross-modal encoder" in n for n in json.loads(response.headers["x-maam-notes"]))
    for refused in (add(server, "t1", "text", "bob", b"a cup of coffee"),
                    retrieve(server, "carol", "text", b"a cup of coffee")):
        assert refused.status_code == 503
        assert "text content cannot be encoded" in refused.json()["detail"]
        assert "maam models pull clip_vit_b32" in refused.json()["detail"]


def test_adding_a_cross_modal_model_needs_no_reset(start_server: StartServer, visual_only: Path, both: Path,
                                                   tmp_path: Path) -> None:
    data = tmp_path / "state"
    server = start_server(repository=visual_only, data_dir=data)
    for name in PHOTOS:
        add(server, f"i-{name}", "image", "bob", image_bytes(name))
    for i in range(3):
        add(server, f"n{i}", "image", "bob", noise_image(i))
    server.stop()

    server = start_server(repository=both, data_dir=data)  # CLIP-like model installed: same data directory

    def encoded() -> bool:
        spaces = server.client.get("/info").json()["spaces"]
        return all(s["pending"] == 0 for s in spaces) and len(spaces) == 3

    wait_until(encoded, timeout=60, what="the stored images encoded into the new space")
    spaces = {(s["space"], s["modality"]): s["vectors"] for s in server.client.get("/info").json()["spaces"]}
    assert spaces == {("test-clip", "image"): 7, ("test-clip", "text"): 0, ("test-visual", "image"): 7}
    # Text to image now works, over images stored before the cross-modal model existed.
    text_query = retrieve(server, "carol", "text", b"a cup of coffee", k=7)
    assert text_query.status_code == 200 and len(text_query.json()["image"]["contents"]) == 7
    assert json.loads(text_query.headers["x-maam-spaces"]) == {"text": "test-clip"}
    # Image queries prefer the cross-modal space; the image-only space can be named.
    default = retrieve(server, "carol", "image", image_bytes("rocket"))
    assert json.loads(default.headers["x-maam-spaces"]) == {"image": "test-clip"}
    assert default.json()["image"]["contents"][0] == "i-rocket"
    visual = retrieve(server, "carol", "image", image_bytes("rocket"), space="test-visual")
    assert json.loads(visual.headers["x-maam-spaces"]) == {"image": "test-visual"}
    assert visual.json()["image"]["contents"][0] == "i-rocket"
    assert visual.json()["image"]["scores"][0] == pytest.approx(1.0, abs=1e-4)
    unknown = retrieve(server, "carol", "image", image_bytes("rocket"), space="nope")
    assert unknown.status_code == 404 and "test-visual" in unknown.json()["detail"]
    assert retrieve(server, "carol", "text", b"coffee", space="test-visual").status_code == 503
    # New content goes into every space that encodes its type.
    add(server, "i-new", "image", "dave", image_bytes("camera"))
    spaces = server.client.get("/info").json()["spaces"]
    assert sorted(s["vectors"] for s in spaces if s["modality"] == "image") == [8, 8]
