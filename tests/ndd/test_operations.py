"""`maam serve ndd` operations: request ids, Prometheus metrics (requests, latency, job queue depth),
JSON logs, and a graceful SIGTERM that lets an upload in flight finish and its job be accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ndd.conftest import encode
from tests.support.operations import (
    HeldRequest,
    check_http_metrics_and_request_id,
    check_json_logs,
    metric_value,
    multipart,
    scrape,
    sigterm_during_held_request,
)
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam


@pytest.fixture
def ndd(tmp_path: Path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = ServiceProcess(maam("serve", "ndd", "--port", str(port)), env=child_env(MAAM_DATA_DIR=str(tmp_path)))

    healthy = http_healthy(base, timeout=1)

    process.wait_ready(healthy, timeout=60, what="ndd service")
    try:
        yield process, base, tmp_path
    finally:
        process.stop()


def test_metrics_request_ids_json_logs_and_graceful_sigterm(ndd, photos) -> None:
    process, base, data_dir = ndd
    request_id = check_http_metrics_and_request_id(base, "ndd")
    exposition = scrape(f"{base}/metrics")
    assert metric_value(exposition, "maam_queue_depth", {"queue": "ndd_jobs"}) == 0
    assert "ndd_items_indexed_total" in exposition or "ndd_items_indexed" in exposition  # its own counters too
    assert metric_value(exposition, "process_resident_memory_bytes") > 0

    body, content_type = multipart({"ids": "coffee"}, {"files": ("coffee.png", encode(photos["coffee"]), "image/png")})
    cut = len(body) // 2
    held = HeldRequest("POST", f"{base}/api/v1/images/jobs/upload", body[:cut], body[cut:],
                       headers={"content-type": content_type, "x-request-id": "held-upload"})
    reply = sigterm_during_held_request(process, base, held)
    assert reply.status_code == 202, reply.text
    assert reply.headers["x-request-id"] == "held-upload"
    assert reply.json()["total"] == 1
    # The accepted job was indexed and saved before the process exited, not dropped.
    assert list((data_dir / "ndd").rglob("image-offline.faiss")), process.output[-3000:]
    check_json_logs(process.output, "ndd", request_id)
