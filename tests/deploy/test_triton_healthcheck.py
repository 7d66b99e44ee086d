"""The compose Triton healthcheck (deploy/triton/ready.py, the command compose runs) is healthy only when every
model whose weights are installed is READY: run against a real HTTP server that answers Triton's repository
index the way Triton does, over a real repository directory."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.deploy.compose import REPO_ROOT, load


class _Index(BaseHTTPRequestHandler):
    models: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.dumps(type(self).models).encode() if self.path == "/v2/repository/index" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def _model(root: Path, name: str, weights: bool) -> None:
    (root / name / "1").mkdir(parents=True)
    (root / name / "config.pbtxt").write_text(f'name: "{name}"\n')
    if weights:
        (root / name / "1" / "model.onnx").write_bytes(b"onnx")


def _run(server: ThreadingHTTPServer, repository: Path) -> subprocess.CompletedProcess:
    test = load()["services"]["triton"]["healthcheck"]["test"]
    assert test[1:3] == ["python3", "/opt/maam/triton_ready.py"]
    args = test[3:]
    args[args.index("--url") + 1] = f"http://127.0.0.1:{server.server_port}"
    args[args.index("--repository") + 1] = str(repository)
    return subprocess.run([sys.executable, str(REPO_ROOT / "deploy" / "triton" / "ready.py"), *args],
                          capture_output=True, text=True, timeout=20)


def test_healthy_only_when_every_installed_model_is_ready(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    empty = _run(server, tmp_path)
    assert empty.returncode == 1 and "install-shipped" in empty.stderr  # zero models is not healthy
    _model(tmp_path, "detector", weights=True)
    _model(tmp_path, "embedder", weights=True)
    _model(tmp_path, "clip_vit_b32_image", weights=False)  # a config whose weights are not pulled
    _Index.models = [{"name": "detector", "version": "1", "state": "READY"},
                     {"name": "embedder", "version": "1", "state": "LOADING"},
                     {"name": "clip_vit_b32_image", "state": "UNAVAILABLE", "reason": "no model.onnx"}]
    loading = _run(server, tmp_path)
    assert loading.returncode == 1 and "embedder (LOADING)" in loading.stderr and "clip" not in loading.stderr
    _Index.models[1]["state"] = "READY"
    assert _run(server, tmp_path).returncode == 0  # the model without weights does not count
    _Index.models = _Index.models[:1]
    unlisted = _run(server, tmp_path)
    assert unlisted.returncode == 1 and "embedder (not listed)" in unlisted.stderr
    _Index.models = [{"name": "detector", "state": "READY"}, {"name": "embedder", "state": "READY"}]
    server.shutdown()
    server.server_close()
    down = _run(server, tmp_path)
    assert down.returncode == 1 and "does not answer" in down.stderr


def test_the_cpu_profile_checks_its_generated_repository() -> None:
    test = load()["services"]["triton-cpu"]["healthcheck"]["test"]
    assert test[test.index("--repository") + 1] == "/cpu-models"
