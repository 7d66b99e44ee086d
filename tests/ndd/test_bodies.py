"""NDD caps every body while it streams in (issue 20): a chunked body far over its route's cap is answered 413,
in the error envelope, after about the cap has arrived, not after the whole body was spooled to disk. Routes
that take files get MAAM_NDD__MAX_BODY_MB, JSON routes 1 MiB (or more for larger jobs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.ndd.app import create_app
from services.ndd.core.config import NddSettings
from tests.security.test_dam_bodies import BOUNDARY, MiB, _part_head, stream_until_answered
from tests.support.schemathesis_probe import ThreadedServer


@pytest.fixture
def ndd(tmp_path: Path) -> Iterator[ThreadedServer]:
    server = ThreadedServer(create_app(Settings(data_dir=tmp_path / "data"), NddSettings(max_body_mb=2)))
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["/api/v1/images/jobs/upload", "/api/v1/images/search/upload",
                                  "/api/v1/videos/jobs/upload", "/api/v1/videos/search/upload"])
def test_file_routes_stop_reading_at_max_body_mb(ndd: ThreadedServer, path: str) -> None:
    status, sent = stream_until_answered(ndd.url, path, "unused", f"multipart/form-data; boundary={BOUNDARY}",
                                         _part_head("files", "big.png"), 64 * MiB)
    assert status == 413 and sent < 2 * MiB + 16 * MiB, (status, sent // MiB)


def test_json_routes_stop_reading_at_a_small_cap(ndd: ThreadedServer) -> None:
    status, sent = stream_until_answered(ndd.url, "/api/v1/images/jobs", "unused", "application/json",
                                         b'{"items": [' + b" " * 1000, 64 * MiB)
    assert status == 413 and sent < 17 * MiB, (status, sent // MiB)


def test_the_413_is_the_envelope_and_a_big_job_still_fits(make_client) -> None:
    client = make_client(max_body_mb=1)
    big = client.post("/api/v1/images/search/upload", files={"file": ("a.png", b"x" * (2 * MiB))})
    assert big.status_code == 413
    assert big.json() == {"detail": "the request body is over this route's limit of 1 MiB", "status": 413}
    # A job of max_items_per_job URL items at their length bounds fits the JSON cap.
    items = [{"id": f"{i:0>500}", "url": "https://example.com/" + "x" * 4000} for i in range(1000)]
    job = client.post("/api/v1/images/jobs", json={"collection_id": "nope", "items": items})
    assert job.status_code == 404  # read whole and refused for its collection, not for its size
