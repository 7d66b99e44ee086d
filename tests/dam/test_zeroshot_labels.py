"""A user's own zero-shot label (a name and prompts): its one prototype is the normalised mean of the
prompts' text vectors in the library's cross-modal space, its matches are the cosines of the assets'
image vectors with it, and applying it feeds /search?label= like an anchor-image detector."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from tests.dam.conftest import png_bytes, upload, wait_annotated

PROMPTS = ["a photo of a harbour", "boats in a harbour at dusk"]


@pytest.fixture(scope="module")
def carol(dam):
    with dam.user("carol@example.org") as client:
        yield client


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def test_a_zero_shot_label_matches_by_the_mean_prompt_and_feeds_label_search(carol, annotation_server) -> None:
    images = [png_bytes(300 + i, pattern="photo") for i in range(3)]
    ids = [upload(carol, data, f"z{i}.png", title=f"zero-shot {i}").json()["id"] for i, data in enumerate(images)]
    for asset_id in ids:
        wait_annotated(carol, asset_id)

    created = carol.post("/api/detectors/zeroshot", json={"name": "Harbour", "prompts": PROMPTS})
    assert created.status_code == 201, created.text
    label = created.json()
    assert label["label"] == "harbour" and label["prototypes"] == 1 and label["model"] == "test_image_embedder"
    assert label["threshold"] == 0.25  # MAAM_DAM__ZEROSHOT_LABEL_THRESHOLD

    with grpc.insecure_channel(f"127.0.0.1:{annotation_server.port}") as channel:
        stub = pb_grpc.MediaAnnotationServerStub(channel)
        texts = [stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text=p, model="test_text_embedder"))
                 for p in PROMPTS]
        vectors = [stub.ImageCrossModalEmbedding(pb.AnnotationRequest(asset_data=d, model="test_image_embedder"))
                   for d in images]
    prototype = _unit(np.mean([_unit(t.embedding.values) for t in texts], axis=0))
    want = {asset_id: float(_unit(v.embedding.values) @ prototype) for asset_id, v in zip(ids, vectors, strict=True)}

    ranked = carol.get(f"/api/detectors/{label['id']}/matches", params={"all_assets": True}).json()
    got = {m["asset_id"]: m["score"] for m in ranked if m["asset_id"] in want and m["matched"] == "image"}
    assert got.keys() == want.keys()
    assert all(abs(got[i] - want[i]) < 1e-4 for i in want), (got, want)

    cut = sorted(want.values())[1]  # keeps the best two of the three
    assert carol.patch(f"/api/detectors/{label['id']}", json={"threshold": cut - 1e-6}).status_code == 200
    applied = carol.post(f"/api/detectors/{label['id']}/apply").json()
    best_two = sorted(want, key=want.get)[1:]
    assert sorted(m["asset_id"] for m in applied if m["asset_id"] in want) == sorted(best_two)
    found = carol.get("/api/search", params={"label": "harbour"}).json()
    assert sorted(h["asset"]["id"] for h in found["hits"]) == sorted(
        m["asset_id"] for m in applied)


@pytest.mark.parametrize("body", [
    {"name": "x", "prompts": []}, {"name": "x", "prompts": ["  "]}, {"name": "", "prompts": ["a cat"]},
    {"name": "x", "prompts": ["a cat"], "threshold": 2}, {"name": "x", "prompts": ["a cat"], "extra": 1},
])
def test_bad_zero_shot_labels_are_422(carol, body) -> None:
    assert carol.post("/api/detectors/zeroshot", json=body).status_code == 422


def test_a_zero_shot_label_in_a_visual_only_space_is_refused(carol) -> None:
    reply = carol.post("/api/detectors/zeroshot", json={"name": "x", "prompts": ["a cat"],
                                                         "space": "test_visual_embedder"})
    assert reply.status_code == 422 and "maam models pull clip_vit_b32" in reply.json()["detail"]
