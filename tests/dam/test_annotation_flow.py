"""Upload -> each model's result appears as it arrives -> text, facet, filter and kNN search find the asset.
Real PostgreSQL + pgvector, the real annotation service (its own code, in-process so one model can be held back)
over gRPC with the test models, the DAM over real HTTP."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from tests.dam.annotation_server import InProcessAnnotation
from tests.dam.conftest import png_bytes, start_dam, upload, wait_annotated
from tests.support.processes import free_port, wait_until

EXPECTED = {"test_detector", "test_image_embedder", "test_region_embedder", "test_visual_embedder", "test_captioner",
            "test_nsfw_classifier", "test_meme_classifier", "test_disturbing_classifier"}
# Whole-image embedding spaces of the test repository: two 16-d (one cross-modal) and one 24-d.
SPACES = {"test_image_embedder": 16, "test_region_embedder": 16, "test_visual_embedder": 24}


@pytest.fixture(scope="module")
def annotation(test_repository):
    server = InProcessAnnotation(test_repository, free_port())
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def dam(tmp_path_factory, pg_server_uri, annotation):
    instance = start_dam(tmp_path_factory.mktemp("dam-flow"), pg_server_uri, annotation.port, annotation.repository)
    yield instance
    instance.process.stop()


@pytest.fixture(scope="module")
def alice(dam):
    with dam.user("alice@example.org") as client:
        yield client


def _models(client, asset_id: int) -> dict[str, str]:
    return {a["model"]: a["state"] for a in client.get(f"/api/assets/{asset_id}/annotations").json()}


def test_results_arrive_model_by_model_and_search_finds_the_asset(alice, annotation):
    # Both whole-image embedders (their results are both `cross_modal_embedding` messages) wait; every other
    # model streams its result meanwhile.
    annotation.hold("test_image_embedder", "test_visual_embedder")
    try:
        reply = upload(alice, png_bytes(101, pattern="photo"), "harbour.png", title="Gargoyles on the cathedral",
                       description="Stone figures at dusk", tags="gothic,stone", visibility="private")
        assert reply.status_code == 201, reply.text
        asset = reply.json()
        assert asset["mime"] == "image/png" and asset["kind"] == "image" and asset["width"] == 48
        # The detector's result is stored and searchable while the other models are still running.
        wait_until(lambda: _models(alice, asset["id"]).get("test_detector") == "done", 30, what="detector result")
        running = alice.get(f"/api/assets/{asset['id']}").json()
        assert running["annotation_state"] == "running" and running["annotation_failed_models"] == 0
        assert "test_image_embedder" not in _models(alice, asset["id"])

        def facets() -> dict:
            return alice.get("/api/search", params={"q": "gargoyles"}).json()["facets"]["annotation_types"]

        wait_until(lambda: facets().get("object_detection") == 1, 10, what="the detector's result in the index")
        assert "cross_modal_embedding" not in facets()
        assert alice.get(f"/api/assets/{asset['id']}").json()["annotation_state"] == "running"
    finally:
        annotation.release()
    done = wait_annotated(alice, asset["id"], states=("done", "failed"))
    models = _models(alice, asset["id"])
    failed = [(a["model"], a["error"]) for a in alice.get(f"/api/assets/{asset['id']}/annotations").json()
              if a["state"] != "done"]
    assert done["annotation_state"] == "done" and done["annotation_failed_models"] == 0, failed
    assert set(models) >= EXPECTED and set(models.values()) == {"done"}
    results = {a["model"]: a["data"] for a in alice.get(f"/api/assets/{asset['id']}/annotations").json()}
    # The generated caption is searchable text (source document 2.2.1).
    caption_word = results["test_captioner"]["caption"].split()[0]
    captioned = alice.get("/api/search", params={"q": caption_word}).json()
    assert asset["id"] in [h["asset"]["id"] for h in captioned["hits"]]
    assert "captions" in next(h for h in captioned["hits"] if h["asset"]["id"] == asset["id"])["highlights"]
    # Moderation flags are filters: NSFW include/exclude/only agree with the stored result.
    is_nsfw = bool(results["test_nsfw_classifier"].get("is_nsfw", False))
    only = {h["asset"]["id"] for h in alice.get("/api/search", params={"nsfw": "only"}).json()["hits"]}
    excluded = {h["asset"]["id"] for h in alice.get("/api/search", params={"nsfw": "exclude"}).json()["hits"]}
    assert (asset["id"] in only) == is_nsfw and (asset["id"] in excluded) != is_nsfw
    detections = next(a for a in alice.get(f"/api/assets/{asset['id']}/annotations").json()
                      if a["model"] == "test_detector")["data"]["detections"]
    assert detections, "the test detector found no object; the fixture image must give at least one"
    label = detections[0]["label"]

    # Full text (stemmed: "gargoyle" matches "Gargoyles") with highlights.
    hits = alice.get("/api/search", params={"q": "gargoyle"}).json()
    assert [h["asset"]["id"] for h in hits["hits"]] == [asset["id"]]
    assert "<mark>Gargoyles</mark>" in hits["hits"][0]["highlights"]["title"][0]
    # Tags are searchable too; a word in no field finds nothing.
    assert alice.get("/api/search", params={"q": "gothic"}).json()["total"] == 1
    assert alice.get("/api/search", params={"q": "submarine"}).json()["total"] == 0
    # Facets and the object filter.
    result = alice.get("/api/search", params={"objects": label}).json()
    assert asset["id"] in [h["asset"]["id"] for h in result["hits"]]
    assert result["facets"]["objects"][label] >= 1
    assert result["facets"]["kind"] == {"image": result["total"]}
    assert {"object_detection", "cross_modal_embedding", "region_features", "captioning", "nsfw"} <= set(
        result["facets"]["annotation_types"])
    assert alice.get("/api/search", params={"objects": "no_such_label"}).json()["total"] == 0
    assert alice.get("/api/search", params={"type": "video", "q": "gargoyle"}).json()["total"] == 0
    assert alice.get("/api/search", params={"uploaded_from": "2000-01-01", "uploaded_to": "2000-12-31"}
                     ).json()["total"] == 0


def test_knn_similar_to_asset_region_and_uploaded_image(alice):
    ids = []
    for seed in range(10, 16):
        reply = upload(alice, png_bytes(seed, pattern="photo"), f"p{seed}.png", title=f"photo {seed}")
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["id"])
    for asset_id in ids:
        wait_annotated(alice, asset_id)
    query = ids[0]
    similar = alice.get("/api/search", params={"similar_to": query, "size": 50}).json()
    found = [h["asset"]["id"] for h in similar["hits"]]
    assert query not in found and set(ids[1:]) <= set(found)
    scores = [h["score"] for h in similar["hits"]]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0001 for s in scores)
    # The default space: a whole-image model's, covering most assets, by name on a tie; named in the reply.
    assert similar["space"] == "test_image_embedder"
    # Every space of the asset can be searched, each on its own: the 24-d one ranks by its own vectors.
    for space in SPACES:
        other = alice.get("/api/search", params={"similar_to": query, "size": 50, "space": space}).json()
        assert other["space"] == space and set(ids[1:]) <= {h["asset"]["id"] for h in other["hits"]}
    visual = alice.get("/api/search", params={"similar_to": query, "size": 50, "space": "test_visual_embedder"}).json()
    assert [h["score"] for h in visual["hits"]] != scores  # another model, other distances
    unknown = alice.get("/api/search", params={"similar_to": query, "space": "no_such_model"})
    assert unknown.status_code == 422 and "test_visual_embedder" in unknown.json()["detail"]
    # Combined with text: only the matching title remains.
    combined = alice.get("/api/search", params={"similar_to": query, "q": f"\"photo {12}\""}).json()
    assert [h["asset"]["id"] for h in combined["hits"]] == [ids[2]]
    # The same bytes uploaded as a query image rank that asset first with similarity ~1.
    for space in (None, *SPACES):
        by_image = alice.post("/api/search/similar", params={"space": space} if space else {},
                              files={"image": ("q.png", png_bytes(13, pattern="photo"))}).json()
        assert by_image["hits"][0]["asset"]["id"] == ids[3] and by_image["hits"][0]["score"] > 0.999, space
        assert by_image["space"] == (space or "test_image_embedder")
    # A region of an asset, embedded on the fly through ImageRegionFeatureExtraction.
    region = alice.get("/api/search", params={"similar_to": ids[4], "box": "0.1,0.1,0.9,0.9"}).json()
    assert region["total"] >= len(ids) and region["hits"][0]["score"] is not None
    whole = alice.get("/api/search", params={"similar_to": ids[4], "box": "0,0,1,1"}).json()
    assert whole["hits"][0]["asset"]["id"] == ids[4] and whole["hits"][0]["score"] > 0.999
    assert region["space"] == whole["space"] == "test_image_embedder"
    in_visual = alice.get("/api/search", params={"similar_to": ids[4], "box": "0,0,1,1",
                                                 "space": "test_visual_embedder"}).json()
    assert in_visual["space"] == "test_visual_embedder" and in_visual["hits"][0]["asset"]["id"] == ids[4]
    assert in_visual["hits"][0]["score"] > 0.999
    # kNN page 2 continues page 1, and the total counts every visible asset with a vector in the space.
    first = alice.get("/api/search", params={"similar_to": query, "size": 2}).json()
    second = alice.get("/api/search", params={"similar_to": query, "size": 2, "page": 2}).json()
    assert first["total"] == second["total"] >= len(ids) - 1 and first["total_relation"] == "eq"
    assert [h["asset"]["id"] for h in first["hits"] + second["hits"]] == found[:4]
    deep = alice.get("/api/search", params={"similar_to": query, "size": 100, "page": 26})
    assert deep.status_code == 422 and "2500" in deep.json()["detail"]
    assert alice.get("/api/search", params={"size": 100, "page": 101}).status_code == 422


def test_text_to_image_search_runs_in_the_cross_modal_space(alice):
    asset = upload(alice, png_bytes(61, pattern="photo"), "s.png", title="semantic").json()
    wait_annotated(alice, asset["id"])
    found = alice.get("/api/search", params={"q": "a photo of a harbour", "semantic": True, "size": 50}).json()
    # test_image_embedder pairs with test_text_embedder (its `text_model`): the cross-modal space.
    assert found["space"] == "test_image_embedder" and asset["id"] in [h["asset"]["id"] for h in found["hits"]]
    assert all(h["score"] is not None for h in found["hits"])
    visual = alice.get("/api/search", params={"q": "harbour", "semantic": True, "space": "test_visual_embedder"})
    assert visual.status_code == 422 and "maam models pull clip_vit_b32" in visual.json()["detail"]
    assert alice.get("/api/search", params={"semantic": True}).status_code == 422


def test_update_download_thumbnail_reannotate_delete(alice, dam):
    data = png_bytes(201)
    asset = upload(alice, data, "x.png", title="before").json()
    again_upload = upload(alice, data, "again.png")  # same bytes, same user: the existing asset, not a copy
    assert again_upload.status_code == 200
    assert again_upload.json()["id"] == asset["id"] and again_upload.json()["duplicate"] is True
    updated = alice.patch(f"/api/assets/{asset['id']}", json={"title": "a lighthouse", "tags": ["coast", "coast"]})
    assert updated.status_code == 200 and updated.json()["tags"] == ["coast"]
    assert alice.get("/api/search", params={"q": "lighthouse"}).json()["total"] == 1
    download = alice.get(f"/api/assets/{asset['id']}/download")
    assert download.content == data and download.headers["content-type"] == "image/png"
    thumb = alice.get(f"/api/assets/{asset['id']}/thumbnail", params={"size": 128})
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    wait_annotated(alice, asset["id"])
    again = alice.post(f"/api/assets/{asset['id']}/reannotate")
    assert again.status_code == 202 and again.json()["annotation_state"] == "pending"
    wait_annotated(alice, asset["id"])
    rows = alice.get(f"/api/assets/{asset['id']}/annotations").json()
    assert len(rows) == len({r["model"] for r in rows}) >= len(EXPECTED)  # replaced, not duplicated

    blob = dam.data_dir / "dam" / "blobs" / asset["sha256"][:2] / asset["sha256"][2:4] / asset["sha256"]
    assert blob.exists()
    assert alice.delete(f"/api/assets/{asset['id']}").status_code == 204
    assert alice.get(f"/api/assets/{asset['id']}").status_code == 404
    assert alice.get("/api/search", params={"q": "lighthouse"}).json()["total"] == 0
    gc = alice.post("/api/admin/gc", params={"grace_s": 0})  # alice is the first user: admin
    assert gc.status_code == 200 and gc.json()["assets_purged"] >= 1
    assert not blob.exists()


def _video_bytes() -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            frame = np.full((48, 64, 3), (i * 12) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def test_video_and_3d_uploads(alice):
    video = upload(alice, _video_bytes(), "clip.mp4", title="a short clip")
    assert video.status_code == 201, video.text
    assert video.json()["kind"] == "video" and video.json()["duration"] > 0
    done = wait_annotated(alice, video.json()["id"])
    assert done["annotation_state"] == "done"
    assert alice.get(f"/api/assets/{done['id']}/thumbnail").status_code == 200
    assert alice.get("/api/search", params={"type": "video"}).json()["total"] == 1
    mesh = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
    model = upload(alice, mesh, "tri.txt", title="a triangle")
    assert model.status_code == 201 and model.json()["kind"] == "model3d" and model.json()["mime"] == "model/obj"
    assert model.json()["annotation_state"] == "skipped"
    assert alice.get("/api/search", params={"q": "triangle", "type": "model3d"}).json()["total"] == 1


def test_projects_search_within_and_expand(alice):
    ids = [upload(alice, png_bytes(300 + i, pattern="photo"), title=f"shot {i}").json()["id"] for i in range(5)]
    for asset_id in ids:
        wait_annotated(alice, asset_id)
    project = alice.post("/api/projects", json={"name": "Summit 2026", "description": "press photos"}).json()
    added = alice.post(f"/api/projects/{project['id']}/assets", json={"asset_ids": ids[:2]})
    assert added.status_code == 200 and added.json()["asset_count"] == 2
    within = alice.get("/api/search", params={"project": project["id"]}).json()
    assert sorted(h["asset"]["id"] for h in within["hits"]) == sorted(ids[:2])
    expansion = alice.post(f"/api/projects/{project['id']}/expand", params={"k": 3, "add": True})
    assert expansion.status_code == 200 and expansion.json()["space"] == "test_image_embedder"
    suggested = [a["id"] for a in expansion.json()["assets"]]
    assert len(suggested) == 3 and not set(suggested) & set(ids[:2])
    assert alice.get(f"/api/projects/{project['id']}").json()["asset_count"] == 5
    assert alice.delete(f"/api/projects/{project['id']}/assets/{ids[0]}").status_code == 204
    assert alice.get(f"/api/projects/{project['id']}/assets").json()["total"] == 4
    renamed = alice.patch(f"/api/projects/{project['id']}", json={"name": "Summit"})
    assert renamed.json()["name"] == "Summit"
    assert alice.delete(f"/api/projects/{project['id']}").status_code == 204
    assert alice.get(f"/api/projects/{project['id']}").status_code == 404


def test_user_made_detector_matches_and_applies_a_label(alice):
    target = png_bytes(500, pattern="photo")
    ids = [upload(alice, png_bytes(500 + i, pattern="photo"), title=f"cand {i}").json()["id"] for i in range(1, 4)]
    ids.append(upload(alice, target, title="the object").json()["id"])
    for asset_id in ids:
        wait_annotated(alice, asset_id)
    created = alice.post("/api/detectors", data={"name": "Rainbow flag", "threshold": "0.999"},
                         files=[("anchors", ("a1.png", target)), ("anchors", ("a2.png", png_bytes(999)))])
    assert created.status_code == 201, created.text
    detector = created.json()
    # One prototype per anchor and embedding space (three spaces, two of 16 and one of 24 dimensions).
    assert detector["prototypes"] == 2 * len(SPACES) and detector["label"] == "rainbow flag"
    assert detector["threshold"] == 0.999 and detector["model"] == "test_image_embedder"
    matches = alice.get(f"/api/detectors/{detector['id']}/matches").json()
    assert matches[0]["asset_id"] == ids[-1] and matches[0]["score"] > 0.999 and matches[0]["space"] in SPACES
    ranked = alice.get(f"/api/detectors/{detector['id']}/matches", params={"all_assets": True}).json()
    assert len(ranked) > len(matches) and [m["score"] for m in ranked] == sorted(
        (m["score"] for m in ranked), reverse=True)
    applied = alice.post(f"/api/detectors/{detector['id']}/apply").json()
    assert [m["asset_id"] for m in applied] == [ids[-1]]
    labelled = alice.get("/api/search", params={"label": "rainbow flag"}).json()
    assert [h["asset"]["id"] for h in labelled["hits"]] == [ids[-1]]
    lowered = alice.patch(f"/api/detectors/{detector['id']}", json={"threshold": -1.0}).json()
    assert lowered["threshold"] == -1.0
    assert len(alice.post(f"/api/detectors/{detector['id']}/apply").json()) >= 4
    assert alice.get("/api/search", params={"label": "rainbow flag"}).json()["total"] >= 4
    assert alice.delete(f"/api/detectors/{detector['id']}").status_code == 204
    assert alice.get("/api/search", params={"label": "rainbow flag"}).json()["total"] == 0


def test_detector_matches_an_object_inside_a_region(alice):
    """An anchor showing only one detected object matches the asset through that region's vector."""
    data = png_bytes(777, size=64, pattern="photo")
    asset = upload(alice, data, title="scene").json()
    wait_annotated(alice, asset["id"])
    regions = next(a for a in alice.get(f"/api/assets/{asset['id']}/annotations").json()
                   if a["task"] == "region_features")["data"]["regions"]
    box = {k: float(np.float32(regions[0]["box"].get(k, 0.0))) for k in ("x_min", "y_min", "x_max", "y_max")}
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    h, w = pixels.shape[:2]
    x0, y0 = int(np.floor(box["x_min"] * w)), int(np.floor(box["y_min"] * h))  # the service's crop rounding
    x1, y1 = max(x0 + 1, int(np.ceil(box["x_max"] * w))), max(y0 + 1, int(np.ceil(box["y_max"] * h)))
    crop = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels[y0:y1, x0:x1])).save(crop, "PNG")
    detector = alice.post("/api/detectors", data={"name": "the object", "threshold": "0.99"},
                          files=[("anchors", ("crop.png", crop.getvalue()))]).json()
    best = alice.get(f"/api/detectors/{detector['id']}/matches").json()[0]
    assert best["asset_id"] == asset["id"] and best["matched"] == "region" and best["score"] > 0.999
    assert best["space"] == "test_region_embedder"
    assert best["box"] == pytest.approx([box["x_min"], box["y_min"], box["x_max"], box["y_max"]], abs=1e-6)
