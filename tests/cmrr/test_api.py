"""Every route of the CMRR service through HTTP, on the tiny test encoders (ONNX Runtime in-process)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cmrr.conftest import LiveServer, StartServer, add, image_bytes, noise_image

TEXTS = {
    "t-cat": "a facial photo of a tabby cat",
    "t-rocket": "a rocket standing on a launchpad",
    "t-coffee": "a cup of coffee on a saucer",
    "t-astro": "a portrait of an astronaut with the American flag",
}
IMAGES = ("astronaut", "chelsea", "coffee", "rocket")


def retrieve(server: LiveServer, user: str, kind: str, body: bytes, k: int = 10):
    return server.client.post("/retrieve_contents", params={"user": user, "type": kind, "k": k}, content=body)


def notes(response: httpx.Response) -> list[str]:
    return json.loads(response.headers["x-maam-notes"])


def populate(server: LiveServer, user: str = "bob") -> None:
    for content_id, text in TEXTS.items():
        assert add(server, content_id, "text", user, text.encode()).status_code == 200
    for name in IMAGES:
        assert add(server, f"i-{name}", "image", user, image_bytes(name)).status_code == 200


def test_add_content_answers_like_the_original(server: LiveServer) -> None:
    response = add(server, "t1", "text", "alice", b"a photo of a cat")
    assert response.status_code == 200
    body = response.json()
    assert body["msg"] == "Content t1 successfully added to the indexer by user alice"
    assert isinstance(body["time"], float) and body["time"] >= 0
    response = add(server, "i1", "image", "alice", image_bytes("chelsea", "JPEG"))
    assert response.status_code == 200 and response.json()["status"] == "added"
    assert server.client.get("/info").json()["contents"] == {"text": 1, "image": 1}


def test_retrieve_finds_the_same_content_first_in_both_modalities(server: LiveServer) -> None:
    populate(server)
    response = retrieve(server, "carol", "text", TEXTS["t-rocket"].encode(), k=3)
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"text", "image"}
    assert body["text"]["contents"][0] == "t-rocket"
    assert body["text"]["scores"][0] == pytest.approx(1.0, abs=1e-5)
    assert len(body["text"]["contents"]) == 3 and len(body["image"]["contents"]) == 3
    for part in ("text", "image"):
        scores = body[part]["scores"]
        assert scores == sorted(scores, reverse=True)
    response = retrieve(server, "carol", "image", image_bytes("coffee"), k=2)
    assert response.json()["image"]["contents"][0] == "i-coffee"
    assert response.json()["image"]["scores"][0] == pytest.approx(1.0, abs=1e-4)


def test_retrieve_excludes_the_users_own_content(server: LiveServer) -> None:
    populate(server, "bob")
    add(server, "mine", "text", "carol", TEXTS["t-cat"].encode())
    body = retrieve(server, "carol", "text", TEXTS["t-cat"].encode()).json()
    assert "mine" not in body["text"]["contents"]
    assert body["text"]["contents"][0] == "t-cat"
    own = retrieve(server, "bob", "text", TEXTS["t-cat"].encode()).json()
    assert own["text"]["contents"] == ["mine"]  # bob sees only what others posted
    assert own["image"] == "No contents available other than bob ones"  # the original's answer


def test_k_larger_than_what_exists_returns_everything_with_a_note(server: LiveServer) -> None:
    populate(server)
    response = retrieve(server, "carol", "text", b"cat", k=50)
    body = response.json()
    assert len(body["text"]["contents"]) == len(TEXTS)
    assert len(body["image"]["contents"]) == len(IMAGES)
    assert any("only 4 text contents" in note for note in notes(response))
    empty = retrieve(server, "bob", "text", b"cat", k=5)
    assert empty.status_code == 200
    assert empty.json() == {"text": "No contents available other than bob ones",
                            "image": "No contents available other than bob ones"}


def test_duplicates_are_stored_once_and_answer_with_the_most_recent_id(server: LiveServer) -> None:
    populate(server, "bob")
    photo = image_bytes("rocket")
    response = add(server, "i-rocket-again", "image", "bob", photo)
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert response.json()["ids"] == ["i-rocket", "i-rocket-again"]
    assert server.client.get("/info").json()["contents"]["image"] == len(IMAGES)
    hits = retrieve(server, "carol", "image", photo).json()["image"]["contents"]
    assert hits[0] == "i-rocket-again" and "i-rocket" not in hits
    # Text too; the same id with the same content again changes nothing.
    assert add(server, "t-cat-2", "text", "bob", TEXTS["t-cat"].encode()).json()["status"] == "duplicate"
    assert add(server, "t-cat-2", "text", "bob", TEXTS["t-cat"].encode()).json()["status"] == "exists"
    assert retrieve(server, "carol", "text", TEXTS["t-cat"].encode()).json()["text"]["contents"][0] == "t-cat-2"
    # Another user posting the same content is another post.
    assert add(server, "dave-rocket", "image", "dave", photo).json()["status"] == "added"
    assert server.client.get("/info").json()["contents"]["image"] == len(IMAGES) + 1


def test_an_id_re_sent_with_other_content_moves_to_it(server: LiveServer) -> None:
    """The original accepts it; here the id then names the new content only (and content left without
    ids goes), so one id never answers for two contents."""
    assert add(server, "x1", "text", "alice", b"first text").json()["status"] == "added"
    moved = add(server, "x1", "text", "alice", b"another text")
    assert moved.status_code == 200 and moved.json()["status"] == "replaced" and moved.json()["ids"] == ["x1"]
    assert moved.json()["msg"] == "Content x1 successfully added to the indexer by user alice"
    assert server.client.get("/info").json()["contents"] == {"text": 1, "image": 0}
    assert retrieve(server, "bob", "text", b"another text").json()["text"]["contents"] == ["x1"]
    across = add(server, "x1", "image", "alice", image_bytes("coffee"))
    assert across.status_code == 200 and across.json()["status"] == "replaced"
    assert server.client.get("/info").json()["contents"] == {"text": 0, "image": 1}
    # Ids belong to their user, as in the original: another user's "x1" is another content.
    assert add(server, "x1", "text", "bob", b"first text").json()["status"] == "added"
    assert server.client.get("/info").json()["contents"] == {"text": 1, "image": 1}


def test_list_and_delete_content(server: LiveServer) -> None:
    add(server, "a1", "text", "alice", b"hello world")
    add(server, "a2", "text", "alice", b"hello world")  # duplicate: ids [a1, a2]
    add(server, "a3", "image", "alice", image_bytes("astronaut"))
    add(server, "b1", "text", "bob", b"something else")
    listing = server.client.get("/contents", params={"user": "alice"}).json()
    assert listing["user"] == "alice"
    assert listing["text"] == [{"id": "a2", "ids": ["a1", "a2"], "added": listing["text"][0]["added"]}]
    assert [e["id"] for e in listing["image"]] == ["a3"]

    assert server.client.delete("/contents/b1", params={"user": "alice"}).status_code == 404  # bob's id
    assert server.client.delete("/contents/nope", params={"user": "alice"}).status_code == 404
    response = server.client.delete("/contents/a2", params={"user": "alice"})
    assert response.status_code == 200 and response.json()["remaining_ids"] == ["a1"]
    assert retrieve(server, "bob", "text", b"hello world").json()["text"]["contents"] == ["a1"]
    assert server.client.delete("/contents/a1", params={"user": "alice"}).status_code == 200
    assert retrieve(server, "bob", "text", b"hello world").json()["text"] == "No contents available other than bob ones"
    assert server.client.get("/contents", params={"user": "alice"}).json()["text"] == []
    # The id is free again once deleted.
    assert add(server, "a1", "text", "alice", b"new text").json()["status"] == "added"


@pytest.mark.parametrize(
    ("kind", "body", "status", "words"),
    [
        ("text", b"caf\xe9 \xff\xfe", 400, "UTF-8"),
        ("text", b"", 400, "empty"),
        ("text", b"   ", 400, "empty"),
        ("image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 400, "could not be decoded"),
        ("image", b"definitely not an image", 400, "could not be decoded"),
        ("video", b"anything", 400, "unknown type"),
    ],
)
def test_bad_bodies_get_clear_errors_and_store_nothing(
    server: LiveServer, kind: str, body: bytes, status: int, words: str
) -> None:
    response = add(server, "bad", kind, "alice", body)
    assert response.status_code == status
    assert words in response.json()["detail"]
    assert server.client.get("/info").json()["contents"] == {"text": 0, "image": 0}
    query = retrieve(server, "alice", kind, body)
    assert query.status_code == status


def test_truncated_image_is_refused(server: LiveServer) -> None:
    data = image_bytes("astronaut", "JPEG", size=200)
    response = add(server, "cut", "image", "alice", data[: len(data) // 3])
    assert response.status_code == 400
    assert "corrupt or truncated" in response.json()["detail"]


@pytest.mark.parametrize("k", ["0", "-3", "ten"])
def test_bad_k_is_refused(server: LiveServer, k: str) -> None:
    response = server.client.post("/retrieve_contents", params={"user": "a", "type": "text", "k": k}, content=b"x")
    assert response.status_code == 422 and "k" in response.json()["detail"]
    response = server.client.post("/recommend_contents", params={"user": "a", "k": k})
    assert response.status_code == 422


def test_missing_parameters_and_huge_bodies(start_server: StartServer) -> None:
    server = start_server(max_body_mb=0.01)
    response = server.client.post("/add_content", params={"type": "text", "user": "a"}, content=b"x")
    assert response.status_code == 422 and "id" in response.json()["detail"]
    response = add(server, "big", "text", "a", b"a" * 20_000)
    assert response.status_code == 413 and "MAX_BODY_MB" in response.json()["detail"]


def test_recommend_small_histories_never_fail(server: LiveServer) -> None:
    populate(server, "bob")
    for posts in range(3):
        user = f"new{posts}"
        for i in range(posts):
            add(server, f"{user}-{i}", "text", user, f"post {i} of {user}".encode())
            add(server, f"{user}-img{i}", "image", user, noise_image(100 * posts + i))
        response = server.client.post("/recommend_contents", params={"user": user, "k": 3, "seed": 0})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"text", "image"}
        for src in ("text", "image"):
            for dst in ("text", "image"):
                got = body[src][dst]
                assert len(got["contents"]) == (0 if posts == 0 else 3)
                assert len(got["scores"]) == len(got["contents"])
        if posts == 0:
            assert any("no text posts" in note for note in notes(response))
        else:
            assert any("too few to cluster" in note for note in notes(response))


def test_recommend_covers_four_pairs_excludes_own_content_and_is_reproducible(server: LiveServer) -> None:
    populate(server, "bob")
    for i in range(8):
        add(server, f"c-t{i}", "text", "carol", f"carol writes about topic {i % 2} again {i}".encode())
        add(server, f"c-i{i}", "image", "carol", noise_image(i))
    params = {"user": "carol", "k": 3, "seed": 42}
    first = server.client.post("/recommend_contents", params=params).json()
    assert server.client.post("/recommend_contents", params=params).json() == first
    for src in ("text", "image"):
        assert set(first[src]) == {"text", "image"}
        for dst in ("text", "image"):
            contents, scores = first[src][dst]["contents"], first[src][dst]["scores"]
            assert len(contents) == 3 and scores == sorted(scores, reverse=True)
            assert not any(c.startswith("c-") for c in contents)
    big = server.client.post("/recommend_contents", params={"user": "carol", "k": 100})
    assert len(big.json()["image"]["image"]["contents"]) == len(IMAGES)
    assert any("only 4 image contents" in note for note in notes(big))


def test_openapi_health_info_and_metrics(server: LiveServer) -> None:
    schema = httpx_get(server, "/openapi.json").json()
    for path in ("add_content", "retrieve_contents", "recommend_contents", "contents", "contents/{content_id}"):
        assert f"/mv_retrieval/v0.1/{path}" in schema["paths"]
    assert httpx_get(server, "/healthz").json() == {"status": "ok", "modalities": ["text", "image"]}
    info = server.client.get("/info").json()
    assert info["encoders"]["image_model"] == "test_image_embedder"
    assert info["encoders"]["cross_modal"] is True
    add(server, "m1", "text", "a", b"metrics")
    assert "cmrr_requests_total" in httpx_get(server, "/metrics").text


def httpx_get(server: LiveServer, path: str):
    import httpx

    return httpx.get(server.url + path, timeout=30)


def test_bodies_keep_the_original_protocols_shape(server: LiveServer) -> None:
    """What the original's usage/ scripts read: top-level keys are the content types and nothing else; notes
    and the embedding space searched come as headers (JSON, ASCII)."""
    populate(server, "bob")
    response = retrieve(server, "mario.rossi", "text", b"a page of text about segmentation", k=3)
    assert list(response.json()) == ["text", "image"]
    for part in response.json().values():
        assert set(part) == {"contents", "scores"} and len(part["contents"]) == len(part["scores"]) == 3
    assert json.loads(response.headers["x-maam-spaces"]) == {"text": "test-clip"} and notes(response) == []
    add(server, "luigi-1", "text", "luigi", "a black-and-white silhouette of a horse, café".encode())
    recommended = server.client.post("/recommend_contents", params={"user": "luigi", "k": 8})
    assert {src: set(row) for src, row in recommended.json().items()} == {"text": {"text", "image"},
                                                                          "image": {"text", "image"}}
    assert json.loads(recommended.headers["x-maam-spaces"]) == {"text": "test-clip", "image": "test-clip"}
    assert "luigi" in " ".join(notes(recommended))
    recommended.headers["x-maam-notes"].encode("ascii")
    assert server.client.post("/add_content", params={"id": "q", "type": "text", "user": "u"},
                              content=b"hi").json()["msg"] == "Content q successfully added to the indexer by user u"


def test_texts_past_the_length_bound_are_413_before_encoding(start_server: StartServer) -> None:
    server = start_server(max_text_chars=1000)
    assert add(server, "t-ok", "text", "bob", b"a" * 1000).status_code == 200
    too_long = add(server, "t-long", "text", "bob", b"a" * 1001)
    assert too_long.status_code == 413
    assert "1,001 characters, over the 1,000-character limit" in too_long.json()["detail"]
    query = retrieve(server, "alice", "text", "é".encode() * 1001)
    assert query.status_code == 413
    assert server.client.get("/contents", params={"user": "bob"}).json()["text"][0]["id"] == "t-ok"
