"""Which encoders serve: the cross-modal pair, a text-only encoder, or none (said clearly)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cmrr.conftest import StartServer, add, image_bytes


def test_text_only_encoder_serves_text_to_text(
    start_server: StartServer, test_repository: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(test_repository / "test_text_embedder", repo / "test_text_embedder")
    server = start_server(repository=repo)
    info = server.client.get("/info").json()["encoders"]
    assert info["cross_modal"] is False and info["modalities"] == ["text"]
    assert "text to text only" in info["notes"][0] and "maam models pull" in info["notes"][0]
    assert add(server, "t1", "text", "bob", b"hello there").status_code == 200
    image = add(server, "i1", "image", "bob", image_bytes("coffee"))
    assert image.status_code == 503 and "image content cannot be encoded" in image.json()["detail"]
    response = server.client.post("/retrieve_contents", params={"user": "a", "type": "text", "k": 2},
                                  content=b"hello there")
    body = response.json()
    assert body["text"]["contents"] == ["t1"] and body["image"]["contents"] == []
    assert any("needs a cross-modal encoder" in note for note in json.loads(response.headers["x-maam-notes"]))
    add(server, "t2", "text", "a", b"my post")
    rec = server.client.post("/recommend_contents", params={"user": "a", "k": 2}).json()
    assert rec["text"]["text"]["contents"] == ["t1"] and rec["text"]["image"]["contents"] == []


def test_no_encoder_installed_says_what_to_install(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(repository=tmp_path / "empty")
    response = add(server, "t1", "text", "bob", b"hello")
    assert response.status_code == 503
    assert "no cross-modal CLIP model is installed" in response.json()["detail"]
    assert "maam models pull" in response.json()["detail"]
    assert server.client.get("/contents", params={"user": "bob"}).json()["text"] == []


def test_model_albef_does_not_pick_a_clip_space(start_server: StartServer) -> None:
    server = start_server(model="albef")
    info = server.client.get("/info").json()["encoders"]
    assert info["family"] == "albef" and info["image_model"] is None
    assert "ALBEF" in info["notes"][0]
