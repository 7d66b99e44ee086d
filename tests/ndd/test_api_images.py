"""The image half of the NDD REST API, through the real app: collections, jobs, search, delete."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.ndd.conftest import encode, upload_images, wait_job


@pytest.fixture
def indexed(make_client, photos):
    client = make_client()
    job = upload_images(client, {name: encode(rgb) for name, rgb in photos.items()})
    assert job["status"] == "done" and sorted(job["indexed"]) == sorted(photos)
    return client


def _edited(rgb: np.ndarray) -> bytes:
    """Cropped by ~25 %, mirrored, darkened and saved as JPEG q30."""
    h, w = rgb.shape[:2]
    crop = rgb[int(h * 0.08) : int(h * 0.93), int(w * 0.1) : int(w * 0.95)][:, ::-1]
    return encode(np.clip(crop.astype(np.float32) * 0.7, 0, 255).astype(np.uint8), "JPEG", 30)


def test_collections_create_list_get_delete(make_client):
    client = make_client()
    created = client.post("/api/v1/collections", json={"id": "holiday", "name": "Holiday photos"})
    assert created.status_code == 201 and created.json()["name"] == "Holiday photos"
    assert client.post("/api/v1/collections", json={"id": "holiday"}).status_code == 409
    assert client.post("/api/v1/collections", json={"id": "bad id/with slash"}).status_code == 422
    ids = [c["id"] for c in client.get("/api/v1/collections").json()["collections"]]
    assert ids == ["default", "holiday"]
    assert client.get("/api/v1/collections/holiday").json()["images"] == 0
    assert client.delete("/api/v1/collections/holiday").status_code == 204
    assert client.get("/api/v1/collections/holiday").status_code == 404
    assert client.delete("/api/v1/collections/holiday").status_code == 404


def test_upload_job_reports_progress_and_per_item_errors(make_client, photos):
    client = make_client()
    job = upload_images(client, {
        "astronaut": encode(photos["astronaut"]),
        "corrupt": encode(photos["coffee"], "JPEG")[:300],  # truncated JPEG
        "not-an-image": b"hello, I am text",
    })
    assert job["status"] == "done" and job["total"] == 3 and job["processed"] == 3 and job["progress"] == 1.0
    assert job["indexed"] == ["astronaut"]
    errors = {e["id"]: e["error"] for e in job["errors"]}
    assert set(errors) == {"corrupt", "not-an-image"}
    assert "could not be decoded" in errors["corrupt"]
    listed = client.get("/api/v1/images").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == "astronaut"
    assert listed["items"][0]["descriptors"] == ["offline"]


def test_search_by_upload_finds_the_edited_original_first(indexed, photos):
    response = indexed.post("/api/v1/images/search/upload", params={"t_sim": 0.5, "t_rank": 3},
                            files={"file": ("q.jpg", _edited(photos["chelsea"]), "image/jpeg")})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == ["chelsea"]
    assert 0.5 <= results[0]["score"] <= 1.0


def test_scores_are_calibrated_and_t_sim_t_rank_apply(indexed, photos):
    everything = indexed.get("/api/v1/images/search/astronaut", params={"t_sim": 0.0, "t_rank": 100}).json()
    scores = {r["id"]: r["score"] for r in everything["results"]}
    assert "astronaut" not in scores  # the query item itself is left out
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    assert max(scores.values()) < 0.3  # unrelated photos score low
    one = indexed.get("/api/v1/images/search/astronaut", params={"t_sim": 0.0, "t_rank": 1}).json()
    assert len(one["results"]) == 1
    none = indexed.get("/api/v1/images/search/astronaut", params={"t_sim": 0.5}).json()
    assert none["results"] == []


def test_search_by_id_finds_a_near_duplicate_item(indexed, photos):
    upload_images(indexed, {"rocket-copy": _edited(photos["rocket"])})
    results = indexed.get("/api/v1/images/search/rocket", params={"t_sim": 0.5}).json()["results"]
    assert [r["id"] for r in results] == ["rocket-copy"]


@pytest.mark.parametrize(("params", "detail"), [
    ({"t_sim": 1.5}, "less than or equal to 1"),
    ({"t_sim": -0.1}, "greater than or equal to 0"),
    ({"t_rank": 0}, "greater than or equal to 1"),
    ({"descriptor": "sift"}, "offline"),
])
def test_out_of_range_parameters_are_422(indexed, params, detail):
    response = indexed.get("/api/v1/images/search/astronaut", params=params)
    assert response.status_code == 422
    assert detail in response.text


def test_unknown_collection_and_item_are_404(indexed, photos):
    blob = encode(photos["coffee"])
    assert indexed.get("/api/v1/images/search/astronaut", params={"collection_id": "nope"}).status_code == 404
    assert indexed.get("/api/v1/images/search/unknown-id").status_code == 404
    response = indexed.post("/api/v1/images/search/upload", params={"collection_id": "nope"},
                            files={"file": ("q.png", blob, "image/png")})
    assert response.status_code == 404 and "nope" in response.json()["detail"]
    response = indexed.post("/api/v1/images/jobs/upload", files=[("files", ("a.png", blob))],
                            data={"ids": ["a"], "collection_id": "nope"})
    assert response.status_code == 404
    assert indexed.post("/api/v1/images/jobs", json={"collection_id": "nope", "items": [
        {"id": "a", "url": "https://example.com/a.png"}]}).status_code == 404
    assert indexed.get("/api/v1/images", params={"collection_id": "nope"}).status_code == 404
    assert indexed.delete("/api/v1/images/indices/astronaut", params={"collection_id": "nope"}).status_code == 404
    assert indexed.delete("/api/v1/images/indices/never-indexed").status_code == 404


def test_bad_uploads_are_refused_clearly(indexed, photos):
    corrupt = indexed.post("/api/v1/images/search/upload", files={"file": ("x.jpg", b"\xff\xd8\xff\xe0garbage")})
    assert corrupt.status_code == 422 and "could not be decoded" in corrupt.json()["detail"]
    empty = indexed.post("/api/v1/images/search/upload", files={"file": ("x.jpg", b"")})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    mismatch = indexed.post("/api/v1/images/jobs/upload", files=[("files", ("a.png", encode(photos["coffee"])))],
                            data={"ids": ["a", "b"]})
    assert mismatch.status_code == 422 and "one id per file" in mismatch.json()["detail"]


def test_decompression_bomb_is_refused(make_client):
    client = make_client()
    bomb = Image.new("L", (12_000, 9_000))  # 108 Mpx, over the 100 Mpx limit; compresses to little
    blob = encode(np.asarray(bomb))
    response = client.post("/api/v1/images/search/upload", files={"file": ("bomb.png", blob)})
    assert response.status_code == 422 and "decompression bomb" in response.json()["detail"]


def test_huge_upload_is_413(make_client, photos):
    client = make_client(max_upload_mb=1)
    blob = encode(np.random.default_rng(0).integers(0, 255, (800, 800, 3), dtype=np.uint8))
    assert len(blob) > 1024 * 1024
    response = client.post("/api/v1/images/search/upload", files={"file": ("big.png", blob)})
    assert response.status_code == 413


def test_delete_item_removes_it_from_search_and_listing(indexed, photos):
    query = {"file": ("q.jpg", _edited(photos["coffee"]), "image/jpeg")}
    before = indexed.post("/api/v1/images/search/upload", files=query).json()["results"]
    assert [r["id"] for r in before] == ["coffee"]
    deleted = indexed.delete("/api/v1/images/indices/coffee")
    assert deleted.status_code == 200 and deleted.json()["deleted"] == "coffee"
    after = indexed.post("/api/v1/images/search/upload", files=query).json()["results"]
    assert after == []
    ids = [i["id"] for i in indexed.get("/api/v1/images").json()["items"]]
    assert "coffee" not in ids and len(ids) == len(photos) - 1


def test_collections_are_separate(make_client, photos):
    client = make_client()
    client.post("/api/v1/collections", json={"id": "a"})
    client.post("/api/v1/collections", json={"id": "b"})
    upload_images(client, {"x": encode(photos["chelsea"])}, collection_id="a")
    upload_images(client, {"y": encode(photos["coffee"])}, collection_id="b")
    query = {"file": ("q.jpg", _edited(photos["chelsea"]), "image/jpeg")}
    in_a = client.post("/api/v1/images/search/upload", params={"collection_id": "a"}, files=query).json()
    in_b = client.post("/api/v1/images/search/upload", params={"collection_id": "b"}, files=query).json()
    assert [r["id"] for r in in_a["results"]] == ["x"] and in_b["results"] == []
    assert client.delete("/api/v1/collections/a").status_code == 204
    assert [r["id"] for r in client.get("/api/v1/images", params={"collection_id": "b"}).json()["items"]] == ["y"]


def test_same_id_replaces_the_item(make_client, photos):
    client = make_client()
    upload_images(client, {"pic": encode(photos["chelsea"])})
    upload_images(client, {"pic": encode(photos["rocket"])})
    assert client.get("/api/v1/images").json()["total"] == 1
    query = {"file": ("q.jpg", _edited(photos["chelsea"]), "image/jpeg")}
    assert client.post("/api/v1/images/search/upload", files=query).json()["results"] == []


def test_index_by_url_and_search_by_url(make_client, photos, static_server):
    base, root = static_server
    (root / "chelsea.png").write_bytes(encode(photos["chelsea"]))
    (root / "query.jpg").write_bytes(_edited(photos["chelsea"]))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    client = make_client(allow_private=True)
    submitted = client.post("/api/v1/images/jobs", json={"items": [
        {"id": "cat", "url": f"{base}/chelsea.png"},
        {"id": "missing", "url": f"{base}/missing.png"},
        {"id": "broken", "url": f"{base}/broken.jpg"},
    ]})
    assert submitted.status_code == 202
    assert submitted.json()["status_url"] == f"/api/v1/jobs/{submitted.json()['job_id']}"
    job = wait_job(client, submitted.json()["job_id"])
    assert job["indexed"] == ["cat"]
    errors = {e["id"]: e["error"] for e in job["errors"]}
    assert "HTTP 404" in errors["missing"] and "could not be decoded" in errors["broken"]
    assert client.get("/api/v1/images").json()["items"][0]["meta"]["url"] == f"{base}/chelsea.png"
    found = client.post("/api/v1/images/search", json={"url": f"{base}/query.jpg", "t_sim": 0.5})
    assert found.status_code == 200 and [r["id"] for r in found.json()["results"]] == ["cat"]
    gone = client.post("/api/v1/images/search", json={"url": f"{base}/missing.png"})
    assert gone.status_code == 422 and "HTTP 404" in gone.json()["detail"]


def test_private_urls_are_refused_by_default(make_client, photos, static_server):
    base, root = static_server
    (root / "chelsea.png").write_bytes(encode(photos["chelsea"]))
    client = make_client()  # MAAM_MEDIA__ALLOW_PRIVATE_URLS left false
    job = client.post("/api/v1/images/jobs", json={"items": [{"id": "cat", "url": f"{base}/chelsea.png"}]})
    assert job.status_code == 400 and "not allowed" in job.json()["detail"]
    search = client.post("/api/v1/images/search", json={"url": f"{base}/chelsea.png"})
    assert search.status_code == 400 and "loopback, private or link-local" in search.json()["detail"]
    scheme = client.post("/api/v1/images/search", json={"url": "file:///etc/passwd"})
    assert scheme.status_code == 400 and "only http and https" in scheme.json()["detail"]
    assert client.get("/api/v1/images").json()["total"] == 0


def test_deep_descriptor_unconfigured_is_503(indexed, photos):
    response = indexed.post("/api/v1/images/search/upload", params={"descriptor": "deep"},
                            files={"file": ("q.png", encode(photos["coffee"]), "image/png")})
    assert response.status_code == 503 and "MAAM_NDD__ANNOTATION_URL" in response.json()["detail"]
    by_id = indexed.get("/api/v1/images/search/coffee", params={"descriptor": "deep"})
    assert by_id.status_code == 409 and "without the 'deep' descriptor" in by_id.json()["detail"]


def test_unknown_job_is_404(make_client):
    assert make_client().get("/api/v1/jobs/0123").status_code == 404


def test_healthz_metrics_openapi(indexed):
    assert indexed.get("/healthz").json()["status"] == "ok"
    indexed.get("/api/v1/images/search/astronaut")
    metrics = indexed.get("/metrics")
    assert metrics.status_code == 200
    assert 'ndd_items_indexed_total{media_type="image"} 6.0' in metrics.text
    assert 'ndd_searches_total{descriptor="offline",media_type="image"} 1.0' in metrics.text
    paths = indexed.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/collections", "/api/v1/images/jobs", "/api/v1/videos/jobs", "/api/v1/jobs/{job_id}",
                 "/api/v1/images/search/{item_id}", "/api/v1/images/indices/{item_id}", "/api/v1/images/search/upload"):
        assert path in paths


def test_heavily_overlaid_copy_is_found_through_keypoint_votes(indexed, photos, monkeypatch):
    from services.ndd.descriptors import offline

    meme = photos["chelsea"].copy()
    meme[20:280, 140:320] = 255  # an opaque sticker over the middle spoils every global window
    meme[35:265, 155:305] = (40, 180, 60)
    query = {"file": ("meme.jpg", encode(meme, "JPEG", 60), "image/jpeg")}
    params = {"t_sim": 0.5, "t_rank": 1}
    monkeypatch.setattr(offline, "SHORTLIST", 1)  # only the best global match gets verified ...
    monkeypatch.setattr(offline, "VOTE_SHORTLIST", 0)
    assert indexed.post("/api/v1/images/search/upload", params=params, files=query).json()["results"] == []
    monkeypatch.setattr(offline, "VOTE_SHORTLIST", 20)  # ... but keypoint votes bring the original in
    results = indexed.post("/api/v1/images/search/upload", params=params, files=query).json()["results"]
    assert [r["id"] for r in results] == ["chelsea"]


def test_collection_ids_of_any_accepted_length_work(make_client, photos):
    client = make_client()
    long_id = "c" * 200  # the longest id a collection may have; its index files are named by a hash
    assert client.post("/api/v1/collections", json={"id": long_id}).status_code == 201
    assert client.post("/api/v1/collections", json={"id": "c" * 201}).status_code == 422
    job = upload_images(client, {"cat": encode(photos["chelsea"])}, collection_id=long_id)
    assert job["indexed"] == ["cat"]
    query = {"file": ("q.jpg", _edited(photos["chelsea"]), "image/jpeg")}
    found = client.post("/api/v1/images/search/upload", params={"collection_id": long_id}, files=query).json()
    assert [r["id"] for r in found["results"]] == ["cat"]
    assert client.delete("/api/v1/images/indices/cat", params={"collection_id": long_id}).status_code == 200
    assert client.delete(f"/api/v1/collections/{long_id}").status_code == 204


def test_huge_offsets_are_422_not_500(indexed):
    response = indexed.get("/api/v1/images", params={"offset": 2**63})
    assert response.status_code == 422 and "offset" in response.json()["detail"]
    assert indexed.get("/api/v1/images", params={"offset": 2**63 - 1}).json()["items"] == []


def test_errors_use_the_published_envelope(indexed):
    """Every 4xx body is {detail: str, status: int} (+ errors for validation), as the OpenAPI schema says."""
    schema = indexed.get("/openapi.json").json()
    operation = schema["paths"]["/api/v1/images/search/{item_id}"]["get"]["responses"]
    assert operation["4XX"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert "422" not in operation  # FastAPI's own HTTPValidationError (detail: array) is not published
    invalid = indexed.get("/api/v1/images/search/astronaut", params={"t_rank": 0}).json()
    assert invalid["status"] == 422 and isinstance(invalid["detail"], str)
    assert invalid["errors"][0]["loc"] == ["query", "t_rank"]
    missing = indexed.get("/api/v1/images/search/nope").json()
    assert missing == {"detail": "image 'nope' is not in collection 'default'", "status": 404}
    assert indexed.get("/api/v1/no-such-route").json()["status"] == 404


def test_search_by_id_in_another_collection_uses_the_stored_item(make_client, photos):
    client = make_client()
    for collection in ("mine", "public"):
        assert client.post("/api/v1/collections", json={"id": collection}).status_code == 201
    assert upload_images(client, {"cat": encode(photos["chelsea"])}, collection_id="mine")["indexed"] == ["cat"]
    copy = encode(np.ascontiguousarray(photos["chelsea"][10:-10, 15:-15]), "JPEG", 60)
    job = upload_images(client, {"cat-copy": copy, "coffee": encode(photos["coffee"])}, collection_id="public")
    assert sorted(job["indexed"]) == ["cat-copy", "coffee"]
    params = {"collection_id": "public", "from_collection_id": "mine", "t_sim": 0.5}
    body = client.get("/api/v1/images/search/cat", params=params).json()
    assert [r["id"] for r in body["results"]] == ["cat-copy"]
    assert body["query"] == {"id": "cat", "collection_id": "mine"}
    # Without it the item is looked for in the searched collection; unknown collections are 404 either way.
    assert client.get("/api/v1/images/search/cat", params={"collection_id": "public"}).status_code == 404
    assert client.get("/api/v1/images/search/cat", params=params | {"collection_id": "nope"}).status_code == 404
    assert client.get("/api/v1/images/search/cat", params=params | {"from_collection_id": "nope"}).status_code == 404


def test_item_ids_of_any_accepted_length_work_and_longer_ones_are_refused_at_creation(make_client, photos):
    client = make_client()
    long_id = "i" * 500  # the longest id an item may have
    job = upload_images(client, {long_id: encode(photos["chelsea"][::2, ::2])})
    assert job["indexed"] == [long_id]
    assert client.get(f"/api/v1/images/search/{long_id}", params={"t_sim": 0}).status_code == 200
    files = [("files", ("x.png", encode(photos["coffee"][::4, ::4]), "image/png"))]
    too_long = client.post("/api/v1/images/jobs/upload", files=files, data={"ids": ["i" * 501]})
    assert too_long.status_code == 422 and "1 to 500 characters" in too_long.json()["detail"]
    by_url = client.post("/api/v1/images/jobs", json={"items": [{"id": "i" * 501, "url": "https://example.com/a"}]})
    assert by_url.status_code == 422
    assert client.get(f"/api/v1/images/search/{'i' * 501}").status_code == 422
    assert client.delete(f"/api/v1/images/indices/{long_id}").status_code == 200
