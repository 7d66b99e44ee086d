"""The compose Triton healthcheck (bash /dev/tcp, no curl in the image) reads the HTTP status of
/v2/health/ready: run against a real HTTP server that answers 200 or 503."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.deploy.compose import load


class _Ready(BaseHTTPRequestHandler):
    ready = True

    def do_GET(self) -> None:
        status = 200 if self.path == "/v2/health/ready" and type(self).ready else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_healthcheck_passes_only_when_ready(server: ThreadingHTTPServer) -> None:
    test = load()["services"]["triton"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    script = test[3].replace("/dev/tcp/127.0.0.1/8000", f"/dev/tcp/127.0.0.1/{server.server_port}")
    assert script != test[3]
    _Ready.ready = True
    assert subprocess.run(["bash", "-c", script], timeout=10).returncode == 0
    _Ready.ready = False
    assert subprocess.run(["bash", "-c", script], timeout=10).returncode != 0
    server.shutdown()
    server.server_close()
    assert subprocess.run(["bash", "-c", script], timeout=10, stderr=subprocess.DEVNULL).returncode != 0
