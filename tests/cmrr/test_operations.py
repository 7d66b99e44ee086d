"""`maam serve cmrr` operations: request ids, Prometheus metrics (requests, latency, model inference
time), JSON logs, and a graceful SIGTERM that lets a request in flight finish and be saved."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from services.common.faiss_files import load_index
from tests.support.operations import (
    HeldRequest,
    check_http_metrics_and_request_id,
    check_json_logs,
    metric_value,
    scrape,
    sigterm_during_held_request,
)
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam

PREFIX = "/mv_retrieval/v0.1"


def test_metrics_request_ids_json_logs_and_graceful_sigterm(test_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(MODEL="clip", MAAM_DATA_DIR=str(tmp_path), MAAM_MODEL_REPOSITORY=str(test_repository))
    process = ServiceProcess(maam("serve", "cmrr", "--port", str(port)), env=env)

    healthy = http_healthy(base)

    try:
        process.wait_ready(healthy, timeout=120, what="cmrr")
        request_id = check_http_metrics_and_request_id(base, "cmrr")
        added = httpx.post(f"{base}{PREFIX}/add_content", params={"id": "1", "type": "text", "user": "u"},
                           content=b"a cat on a sofa", timeout=30)
        assert added.status_code == 200, added.text
        exposition = scrape(f"{base}/metrics")
        route = {"method": "POST", "route": f"{PREFIX}/add_content", "status": "200"}
        assert metric_value(exposition, "maam_http_requests_total", route) == 1
        # The text encoder ran through the instrumented backend: one timed model call.
        assert metric_value(exposition, "maam_model_inference_seconds_count", {"backend": "onnx"}) >= 1
        assert metric_value(exposition, "cmrr_requests_total") >= 3  # its own counter, same registry

        held = HeldRequest("POST", f"{base}{PREFIX}/add_content", b"a dog running ", b"on the beach",
                           params={"id": "2", "type": "text", "user": "u"},
                           headers={"content-type": "text/plain", "x-request-id": "held-add"})
        reply = sigterm_during_held_request(process, base, held)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-request-id"] == "held-add"
        check_json_logs(process.output, "cmrr", request_id)
    finally:
        process.stop()
    # Both contents are in the database, and the index cache was saved on the graceful stop.
    with sqlite3.connect(tmp_path / "cmrr" / "cmrr.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM contents WHERE modality='text'").fetchone()[0] == 2
    [cache] = (tmp_path / "cmrr" / "indexes").glob("*-text.faiss")
    assert load_index(cache).index.ntotal == 2
