"""SIGKILL (not SIGTERM) to the DAM in the middle of a bulk ingest while annotation jobs are claimed: after a
restart nothing acknowledged is lost, nothing is stored twice, and the jobs the killed run held are
reclaimed at startup (not after their 10-minute lease), so every job is finished within 60 s."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.dam.annotation_server import InProcessAnnotation
from tests.dam.conftest import Dam, png_bytes, start_dam
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam, wait_until

ASSETS = 100
MODELS = ["test_detector", "test_image_embedder"]
HELD = "test_detector"

pytestmark = pytest.mark.slow


def _query(dam: Dam, sql: str) -> list[tuple]:
    url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _count(dam: Dam, sql: str) -> int:
    return int(_query(dam, sql)[0][0])


@pytest.fixture(scope="module")
def annotation(test_repository: Path):
    server = InProcessAnnotation(test_repository, free_port())
    server.start()
    yield server
    server.release()
    server.close()


def test_sigkill_mid_ingest_loses_nothing_and_reclaims_its_jobs(tmp_path, pg_server_uri, annotation):
    # The default 10-minute lease: only a reclaim at startup can finish the killed run's jobs within 60 s.
    dam = start_dam(tmp_path / "dam", pg_server_uri, annotation.port, annotation.repository,
                    MAAM_DAM__ANNOTATION_MODELS=json.dumps(MODELS),
                    MAAM_DAM__JOB_LEASE_S="600")
    folder = tmp_path / "photos"
    folder.mkdir()
    digests = set()
    for i in range(ASSETS):
        data = png_bytes(30_000 + i, size=8)
        (folder / f"img_{i:03d}.png").write_bytes(data)
        digests.add(hashlib.sha256(data).hexdigest())
    with dam.user("killed@example.org") as client:
        api_key = client.post("/api/users/me/api-keys", json={"name": "ingest"}).json()["key"]

    def ingest(target: Dam) -> ServiceProcess:
        env = child_env(**{k: v for k, v in target.env.items() if k.startswith("MAAM_")},
                        MAAM_DAM__URL=target.url, MAAM_DAM__API_KEY=api_key)
        return ServiceProcess([sys.executable, "-m", "services.dam.cli", "ingest", str(folder)], env=env)

    annotation.hold(HELD)  # claimed jobs stay `running` until the kill
    first = ingest(dam)
    restarted = None
    try:
        wait_until(lambda: _count(dam, "SELECT count(*) FROM assets") >= 10
                   and _count(dam, "SELECT count(*) FROM annotation_jobs WHERE state = 'running'") >= 1,
                   60, interval=0.05, what="uploads stored and jobs claimed")
        assert first.alive(), "the ingest finished before the kill; the test needs more assets"
        os.killpg(dam.process.proc.pid, signal.SIGKILL)
        dam.process.proc.wait(30)
        first.proc.wait(120)
        first.stop()
        held = _count(dam, "SELECT count(*) FROM annotation_jobs WHERE state = 'running'")
        assert held >= 1
        # Every row the killed DAM committed has its outbox row.
        assert _count(dam, "SELECT count(*) FROM assets a WHERE NOT EXISTS "
                           "(SELECT 1 FROM annotation_jobs j WHERE j.asset_id = a.id)") == 0
        annotation.release()

        port = free_port()
        restart_at = time.monotonic()
        process = ServiceProcess(maam("serve", "dam", "--port", str(port)), env=dam.env)
        restarted = replace(dam, url=f"http://127.0.0.1:{port}", process=process)
        process.wait_ready(http_healthy(restarted.url), timeout=60, what="the restarted DAM")
        rerun = ingest(restarted)
        rerun.proc.wait(60)
        assert rerun.stop() == 0, rerun.output
        wait_until(lambda: _count(restarted, "SELECT count(*) FROM annotation_jobs WHERE state = 'done'") == ASSETS,
                   max(1.0, 60 - (time.monotonic() - restart_at)), interval=0.2,
                   what="every job finished within 60 s of the restart")
        print(f"{held} job(s) claimed at the kill; all {ASSETS} jobs done "
              f"{time.monotonic() - restart_at:.1f} s after the restart began")
    finally:
        first.stop()
        dam.process.stop()
        if restarted is not None:
            restarted.process.stop()

    # Nothing lost, nothing twice: one asset per file with its bytes, one job per asset, one result per model.
    assert {r[0] for r in _query(dam, "SELECT sha256 FROM assets")} == digests
    assert _count(dam, "SELECT count(*) FROM assets") == ASSETS
    blobs = dam.data_dir / "dam" / "blobs"
    for sha in digests:
        assert hashlib.sha256((blobs / sha[:2] / sha[2:4] / sha).read_bytes()).hexdigest() == sha
    assert _query(dam, "SELECT state, count(*) FROM annotation_jobs GROUP BY 1") == [("done", ASSETS)]
    assert _query(dam, "SELECT count(*) FROM assets WHERE annotation_state <> 'done'") == [(0,)]
    per_model = _query(dam, "SELECT model, count(*), count(DISTINCT asset_id) FROM annotations GROUP BY 1")
    assert sorted(per_model) == [(m, ASSETS, ASSETS) for m in sorted(MODELS)]
    assert list((blobs / "tmp").iterdir()) == []
