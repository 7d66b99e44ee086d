"""A bounded schemathesis run against a live NDD (issue 20): every operation, a few examples each, fixed seed,
deterministic, with the API key set (the probe sends it) and a collection holding indexed images, so generated
ids sometimes exist. No answer may be a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.service_auth import key_headers
from services.common.settings import Settings
from services.ndd.app import create_app
from services.ndd.core.config import NddSettings
from tests.ndd.conftest import encode
from tests.support.processes import wait_until
from tests.support.schemathesis_probe import ThreadedServer, run_schemathesis

pytestmark = pytest.mark.slow
KEY = "ndd-probe-key"


@pytest.fixture
def ndd(tmp_path: Path, photos) -> Iterator[ThreadedServer]:
    server = ThreadedServer(create_app(Settings(data_dir=tmp_path / "data"), NddSettings(api_key=KEY)))
    with httpx.Client(base_url=server.url, headers=key_headers(KEY), timeout=60) as client:
        files = [("files", (f"{n}.png", encode(photos[n][::4, ::4]), "image/png")) for n in ("chelsea", "coffee")]
        job = client.post("/api/v1/images/jobs/upload", files=files, data={"ids": ["1", "a"]}).json()
        wait_until(lambda: client.get(f"/api/v1/jobs/{job['job_id']}").json()["status"] == "done", timeout=60)
        assert client.post("/api/v1/collections", json={"id": "c1"}).status_code == 201
    yield server
    server.stop()


def test_schemathesis_finds_no_server_error(ndd: ThreadedServer, tmp_path: Path) -> None:
    run_schemathesis(ndd.url, tmp_path, "--header", f"X-API-Key: {KEY}")
