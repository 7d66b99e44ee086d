"""A video inside a frame (picture in picture): a clip of a reference scaled into a larger 16:9
frame over another video or a still slide is found, with where it sits; unrelated content in
the same kind of frame is not."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data as data

from services.ndd import video
from tests.ndd.conftest import make_pip_video, make_video
from tests.ndd.test_api_videos import SHOTS, _upload_videos


def _rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.stack([grey] * 3, axis=-1)) if grey.ndim == 2 else grey


@pytest.fixture(scope="module")
def videos(photos):
    shots = [(photos[name], 3.0) for name in SHOTS]  # 12 s, a cut every 3 s
    # Backgrounds and the negative's content are photos no indexed video shows.
    camera, page = _rgb(data.camera()), _rgb(data.page())
    unrelated = [(_rgb(data.hubble_deep_field()), 3.0), (_rgb(data.retina()), 3.0)]
    return {
        "long": make_video(shots),
        "other": make_video([(photos["motorcycle"], 4.0), (photos["immunohistochemistry"], 4.0)]),
        # Seconds 4-9 of "long" at 45 % of the width, in a white border, over a moving video.
        "pip": make_pip_video(shots, camera, (120, 34, 116, 87), start=4.0, end=9.0, border=3),
        # Seconds 2-7 at 35 %, no border, over a still slide.
        "pip_slide": make_pip_video(shots, page, (20, 50, 90, 68), start=2.0, end=7.0, moving_background=False),
        # Unrelated content in the same kind of frame.
        "pip_negative": make_pip_video(unrelated, camera, (120, 34, 116, 87), start=0.5, end=5.5, border=3),
    }


@pytest.mark.parametrize(("name", "offset"), [("pip", 4.0), ("pip_slide", 2.0)])
def test_pip_copy_matches_with_its_aligned_segment(videos, name, offset):
    reference, query = video.extract(videos["long"]), video.extract(videos[name])
    assert len(query.times) > len(np.unique(query.times))  # its frames also have inner windows
    score, [segment] = video.compare(query, reference)
    assert score >= 0.5
    assert segment.query_start <= 1.0 and segment.query_end >= 3.5
    assert abs((segment.reference_start - segment.query_start) - offset) <= 1.0
    assert abs((segment.reference_end - segment.query_end) - offset) <= 1.0


def test_whole_frame_descriptor_alone_misses_the_pip_copy(videos):
    """Why the windows exist: the query's whole frames (first row of each time) do not match."""
    reference, query = video.extract(videos["long"]), video.extract(videos["pip"])
    starts = np.flatnonzero(np.concatenate([[True], query.times[1:] != query.times[:-1]]))
    whole = video.VideoFeatures(query.vectors[starts], query.times[starts], query.duration)
    assert video.compare(whole, reference)[0] < 0.5


def test_pip_is_found_through_the_app_and_unrelated_pip_is_not(make_client, videos):
    client = make_client()
    job = _upload_videos(client, {"long": videos["long"], "other": videos["other"]})
    assert job["indexed"] == ["long", "other"]

    def search(name: str) -> list[dict]:
        response = client.post("/api/v1/videos/search/upload", params={"t_sim": 0.5},
                               files={"file": (f"{name}.mp4", videos[name], "video/mp4")})
        assert response.status_code == 200, response.text
        return response.json()["results"]

    [result] = search("pip")
    assert result["id"] == "long"
    [segment] = result["segments"]
    assert abs((segment["reference_start"] - segment["query_start"]) - 4.0) <= 1.0
    assert search("pip_negative") == []
    # An indexed PiP video is searchable by id: its windows are stored with its frames.
    _upload_videos(client, {"pip": videos["pip"]})
    by_id = client.get("/api/v1/videos/search/pip", params={"t_sim": 0.5}).json()["results"]
    assert [r["id"] for r in by_id] == ["long"]
    # Its listing counts sampled frames, not the window rows stored with them.
    listed = {i["id"]: i["meta"] for i in client.get("/api/v1/videos").json()["items"]}
    features = video.extract(videos["pip"])
    assert listed["pip"]["frames"] == len(np.unique(features.times)) < len(features.times)
