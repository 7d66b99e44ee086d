"""Videos through the real app: a clip cut out of a longer video, re-encoded smaller, is found
together with where it sits."""

from __future__ import annotations

import pytest

from tests.ndd.conftest import make_video, wait_job

SHOTS = ("astronaut", "coffee", "rocket", "chelsea")


@pytest.fixture(scope="module")
def videos(photos):
    shots = [(photos[name], 3.0) for name in SHOTS]  # 12 s, a cut every 3 s
    other = [(photos["motorcycle"], 4.0), (photos["immunohistochemistry"], 4.0)]
    return {
        "long": make_video(shots),
        "other": make_video(other),
        # Seconds 4-9 of "long", re-encoded at another size and frame rate.
        "clip": make_video(shots, fps=10, size=(96, 72), start=4.0, end=9.0),
    }


def _upload_videos(client, blobs: dict[str, bytes]) -> dict:
    files = [("files", (f"{name}.mp4", blob, "video/mp4")) for name, blob in blobs.items()]
    response = client.post("/api/v1/videos/jobs/upload", files=files, data={"ids": list(blobs)})
    assert response.status_code == 202, response.text
    return wait_job(client, response.json()["job_id"])


def test_clip_is_found_with_its_segment(make_client, videos):
    client = make_client()
    job = _upload_videos(client, {"long": videos["long"], "other": videos["other"], "bad": b"\x00\x00\x00\x18ftypmp42"})
    assert job["indexed"] == ["long", "other"] and [e["id"] for e in job["errors"]] == ["bad"]
    listed = {i["id"]: i["meta"] for i in client.get("/api/v1/videos").json()["items"]}
    assert abs(listed["long"]["duration"] - 12.0) < 0.5 and listed["long"]["frames"] >= 12

    response = client.post("/api/v1/videos/search/upload", params={"t_sim": 0.3},
                           files={"file": ("clip.mp4", videos["clip"], "video/mp4")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["id"] for r in body["results"]] == ["long"]
    assert body["results"][0]["score"] >= 0.6
    [segment] = body["results"][0]["segments"]
    assert segment["query_start"] <= 1.0 and segment["query_end"] >= 3.5
    assert abs((segment["reference_start"] - segment["query_start"]) - 4.0) <= 1.0
    assert abs((segment["reference_end"] - segment["query_end"]) - 4.0) <= 1.0


def test_video_search_by_id_delete_and_errors(make_client, videos, photos):
    client = make_client()
    _upload_videos(client, {"long": videos["long"], "clip": videos["clip"], "other": videos["other"]})
    results = client.get("/api/v1/videos/search/clip", params={"t_sim": 0.3}).json()["results"]
    assert [r["id"] for r in results] == ["long"]
    assert client.get("/api/v1/videos/search/nope").status_code == 404
    assert client.get("/api/v1/videos/search/clip", params={"t_sim": 3}).status_code == 422
    corrupt = client.post("/api/v1/videos/search/upload", files={"file": ("x.mp4", b"\x00\x00\x00\x18ftypmp42junk")})
    assert corrupt.status_code == 422 and "video" in corrupt.json()["detail"]
    assert client.delete("/api/v1/videos/indices/long").status_code == 200
    assert client.get("/api/v1/videos/search/clip", params={"t_sim": 0.3}).json()["results"] == []
    assert client.get("/api/v1/videos").json()["total"] == 2
    private = client.post("/api/v1/videos/jobs", json={"items": [{"id": "v", "url": "http://127.0.0.1:9/v.mp4"}]})
    assert private.status_code == 400
