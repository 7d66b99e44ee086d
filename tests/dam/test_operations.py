"""DAM operations: request ids, Prometheus metrics (requests, latency, the annotation backlog from the
outbox), JSON logs, and a graceful SIGTERM: an upload in flight still completes, and the annotation job a
worker holds is released back to `queued` (attempt not counted) instead of staying claimed until its
lease ends. The annotation service is the real one, in-process, so a model can be held mid-job."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.dam.annotation_server import InProcessAnnotation
from tests.dam.conftest import Dam, png_bytes, start_dam, upload
from tests.support.operations import (
    HeldRequest,
    check_http_metrics_and_request_id,
    check_json_logs,
    metric_value,
    multipart,
    scrape,
    sigterm_during_held_request,
)
from tests.support.processes import free_port, wait_until

MODEL = "test_detector"


def _jobs(dam: Dam) -> list[tuple]:
    url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT asset_id, state, attempts, locked_until FROM annotation_jobs ORDER BY asset_id"
                            ).fetchall()


@pytest.fixture(scope="module")
def annotation(test_repository: Path):
    server = InProcessAnnotation(test_repository, free_port())
    server.start()
    yield server
    server.close()


@pytest.fixture
def held_dam(tmp_path: Path, pg_server_uri: str, annotation: InProcessAnnotation):
    # A short grace for jobs (the held one must be released, not waited for) and a long lease
    # (so only the release, never the lease, can free it).
    instance = start_dam(tmp_path, pg_server_uri, annotation.port, annotation.repository,
                         MAAM_DAM__ANNOTATION_MODELS=json.dumps([MODEL]),
                         MAAM_DAM__SHUTDOWN_GRACE_S="0.3", MAAM_DAM__JOB_LEASE_S="600",
                         MAAM_DAM__BACKLOG_INTERVAL_S="0.1")
    annotation.hold(MODEL)
    try:
        yield instance
    finally:
        annotation.release()
        instance.process.stop()


def test_metrics_backlog_request_ids_json_logs_and_graceful_sigterm(held_dam: Dam) -> None:
    dam = held_dam
    request_id = check_http_metrics_and_request_id(dam.url, "dam")
    with dam.user("ops@example.org") as client:
        token = client.headers["Authorization"]
        first = upload(client, png_bytes(1), "first.png")
        assert first.status_code == 201, first.text
        assert first.headers["x-request-id"]

        # The worker holds the job (the model is held): the backlog gauge says claimed.
        def backlog(state: str) -> float:
            return metric_value(scrape(f"{dam.url}/metrics"), "maam_annotation_backlog", {"state": state})

        wait_until(lambda: backlog("claimed") == 1, 30, interval=0.05, what="the job claimed in the backlog gauge")
        exposition = scrape(f"{dam.url}/metrics")
        assert metric_value(exposition, "maam_annotation_backlog", {"state": "pending"}) == 0
        assert metric_value(exposition, "maam_dam_uploads_total") == 1  # its own counters, same registry
        route = {"method": "POST", "route": "/api/assets", "status": "201"}
        assert metric_value(exposition, "maam_http_requests_total", route) == 1, [  # the full route template
            line for line in exposition.splitlines() if line.startswith("maam_http_requests_total")]

        body, content_type = multipart({"title": "held"}, {"file": ("second.png", png_bytes(2), "image/png")})
        cut = len(body) // 2
        held = HeldRequest("POST", f"{dam.url}/api/assets", body[:cut], body[cut:],
                           headers={"content-type": content_type, "authorization": token,
                                    "x-request-id": "held-upload"})
        reply = sigterm_during_held_request(dam.process, dam.url, held)
    assert reply.status_code == 201, reply.text
    assert reply.headers["x-request-id"] == "held-upload"
    second_id = reply.json()["id"]

    jobs = {row[0]: row[1:] for row in _jobs(dam)}
    # The held job was released: queued, no lease, its interrupted attempt not counted; the upload that
    # came in during the stop is stored with its outbox row, never claimed.
    assert jobs == {first.json()["id"]: ("queued", 0, None), second_id: ("queued", 0, None)}, jobs
    # Only the held job was released: from the SIGTERM on, the workers claimed nothing new.
    assert dam.process.output.count("released back to the queue") == 1, dam.process.output[-3000:]
    check_json_logs(dam.process.output, "dam", request_id)
