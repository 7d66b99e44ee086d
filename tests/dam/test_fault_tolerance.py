"""The annotation service stops during a 200-asset ingest: every asset is stored, all are annotated after
it comes back, and none is recorded twice. The service is the real one (its own catalog, controller and
servicer on a real gRPC port), run in-process so its finished streams can be counted per image; stopping it
cancels in-flight calls like a crash."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.dam.annotation_server import InProcessAnnotation
from tests.dam.conftest import png_bytes, start_dam
from tests.support.processes import ServiceProcess, child_env, free_port, wait_until

ASSETS = 200
MODELS = ["test_detector", "test_image_embedder", "test_region_embedder"]


@pytest.fixture(scope="module")
def flaky_annotation(test_repository: Path):
    server = InProcessAnnotation(test_repository, free_port())
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fault_dam(tmp_path_factory, pg_server_uri, flaky_annotation):
    # Three models keep 200 assets quick on two shared cores.
    instance = start_dam(tmp_path_factory.mktemp("fault-dam"), pg_server_uri, flaky_annotation.port,
                         flaky_annotation.repository,
                         MAAM_DAM__ANNOTATION_MODELS=json.dumps(MODELS))
    yield instance
    instance.process.stop()


def _states(dam) -> dict[str, int]:
    url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT annotation_state, count(*) FROM assets GROUP BY 1").fetchall())


def _query(dam, sql: str) -> list[tuple]:
    url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_annotation_outage_during_ingest(fault_dam, flaky_annotation, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    digests = set()
    for i in range(ASSETS):
        data = png_bytes(10_000 + i, size=8)  # tiny, so 200 of them annotate in seconds
        (folder / f"img_{i:03d}.png").write_bytes(data)
        digests.add(hashlib.sha256(data).hexdigest())
    assert len(digests) == ASSETS
    with fault_dam.user("ingest@example.org") as client:
        api_key = client.post("/api/users/me/api-keys", json={"name": "ingest"}).json()["key"]

    env = child_env(**{k: v for k, v in fault_dam.env.items() if k.startswith("MAAM_")},
                    MAAM_DAM_URL=fault_dam.url, MAAM_API_KEY=api_key)
    command = [sys.executable, "-m", "services.dam.cli",
               "ingest", str(folder), "--project", "outage"]
    ingest = ServiceProcess(command, env=env)
    # Let some assets be annotated, then take the annotation service away mid-ingest.
    wait_until(lambda: _states(fault_dam).get("done", 0) >= 10, 60, interval=0.3, what="the first annotations")
    flaky_annotation.stop()
    ingest.proc.wait(120)
    assert ingest.stop() == 0, ingest.output
    assert "uploaded 200" in ingest.output.replace("\n", " ")
    states = _states(fault_dam)
    assert sum(states.values()) == ASSETS  # every asset stored while the service was down
    assert states.get("done", 0) < ASSETS  # ... and some are still waiting for it
    assert states.get("failed", 0) == 0
    retried = _query(fault_dam, "SELECT count(*) FROM annotation_jobs WHERE attempts > 1 OR last_error IS NOT NULL")
    assert retried[0][0] > 0

    flaky_annotation.start()
    wait_until(lambda: _states(fault_dam).get("done", 0) == ASSETS, 180, interval=0.5, what="all assets annotated")
    # Every asset's stream ran to its end on the server; twice only for a call the crash cut between
    # the server's last message and the client's receipt of the status (the DAM then retries it), so
    # at most one per DAM worker in flight at that moment (2). What must be exactly once is the
    # DAM's record: one row per (asset, model), below.
    completed = flaky_annotation.servicer.completed
    assert all(completed[sha] >= 1 for sha in digests)
    assert sum(completed[sha] - 1 for sha in digests) <= 2, {s: n for s, n in completed.items() if n > 1}
    per_model = _query(fault_dam, "SELECT model, count(*), count(DISTINCT asset_id) FROM annotations GROUP BY 1")
    assert sorted(per_model) == [(m, ASSETS, ASSETS) for m in sorted(MODELS)]
    jobs = _query(fault_dam, "SELECT state, count(*) FROM annotation_jobs GROUP BY 1")
    assert jobs == [("done", ASSETS)]

    # Re-running the ingest resumes: everything is already there, nothing is uploaded twice.
    again = ServiceProcess(command, env=env)
    again.proc.wait(120)
    assert again.stop() == 0, again.output
    assert "uploaded 0, already there 200" in again.output.replace("\n", " ")
    assert sum(_states(fault_dam).values()) == ASSETS
    with fault_dam.client(api_key) as client:
        project = next(p for p in client.get("/api/projects").json() if p["name"] == "outage")
        assert project["asset_count"] == ASSETS
