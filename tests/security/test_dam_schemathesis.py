"""A bounded schemathesis run against a live DAM (a few examples per operation, fixed seed, positive and
negative data): no operation answers with a server error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dam.conftest import png_bytes, upload, wait_annotated

SEED = "20"
EXAMPLES = "4"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def populated(dam):
    """An admin (who runs the probe) and a user with an asset, a project and a detector, so that small ids
    the generator picks often exist."""
    admin = dam.user("probe-admin@example.org")
    with dam.user("probe-user@example.org") as user:
        asset = upload(user, png_bytes(501, pattern="photo"), visibility="public").json()
        wait_annotated(user, asset["id"])
        user.post("/api/projects", json={"name": "p", "visibility": "public"})
        user.post("/api/detectors", data={"name": "d", "visibility": "public"},
                  files=[("anchors", ("a.png", png_bytes(502)))])
    yield admin
    admin.close()


def test_schemathesis_finds_no_server_error(dam, populated, tmp_path):
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis), "run", f"{dam.url}/openapi.json",
        "--checks", "not_a_server_error", "--max-examples", EXAMPLES, "--seed", SEED, "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "60", "--no-shrink",
        "--header", f"Authorization: {populated.headers['authorization']}",
        # Signing out would end the probe's own session; it is tested on its own.
        "--exclude-path", "/api/auth/logout",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = result.stdout + result.stderr
    print(next((line.strip() for line in output.splitlines() if re.match(r"\s*\d+ generated", line)), ""))
    assert result.returncode == 0, output[-12000:]
    assert "No issues found" in output or "passed" in output, output[-4000:]
