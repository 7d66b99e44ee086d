"""A bounded schemathesis run against a live CMRR (issue 20): every operation, the original /mv_retrieval ones
included, a few examples each, fixed seed, deterministic, with the API key set (the probe sends it) and a few
contents stored, so retrieval and recommendation have something to rank. No answer may be a server error."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.service_auth import key_headers
from tests.cmrr.conftest import StartServer, add, image_bytes
from tests.support.schemathesis_probe import run_schemathesis

pytestmark = pytest.mark.slow
KEY = "cmrr-probe-key"


def test_schemathesis_finds_no_server_error(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(api_key=KEY)
    server.client.headers.update(key_headers(KEY))
    for user in ("bob", "a"):
        assert add(server, f"t-{user}", "text", user, b"a tabby cat on a sofa").status_code == 200
        assert add(server, f"i-{user}", "image", user, image_bytes("chelsea")).status_code == 200
    run_schemathesis(server.url, tmp_path, "--header", f"X-API-Key: {KEY}")
