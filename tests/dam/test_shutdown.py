"""SIGTERM to the DAM in the middle of a bulk ingest loses nothing: every upload the DAM acknowledged is
stored with its outbox row, the DAM exits through its graceful path, and after a restart the re-run ingest
uploads exactly what was missing and every asset is annotated once per model."""

from __future__ import annotations

import hashlib
import json
import signal
import sys
from dataclasses import dataclass, replace

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.dam.annotation_server import InProcessAnnotation
from tests.dam.conftest import Dam, png_bytes, start_dam
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam, wait_until

ASSETS = 200
MODELS = ["test_detector", "test_image_embedder", "test_region_embedder"]
# A graceful stop releases the jobs it cuts short; the short lease only matters if it did not (a killed
# DAM), and keeps the restart part of the test quick even then.
LEASE_S = "5"

pytestmark = pytest.mark.slow


def _query(dam: Dam, sql: str) -> list[tuple]:
    url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _count(dam: Dam, sql: str) -> int:
    return int(_query(dam, sql)[0][0])


def _restart(dam: Dam) -> Dam:
    """The same DAM (database, data directory, settings) on a new port."""
    port = free_port()
    process = ServiceProcess(maam("serve", "dam", "--port", str(port)), env=dam.env)
    url = f"http://127.0.0.1:{port}"

    ready = http_healthy(url)

    process.wait_ready(ready, timeout=90, what="the restarted DAM")
    return replace(dam, url=url, process=process)


@dataclass
class Outcome:
    stored_at_stop: int
    # Jobs not finished when the DAM stopped (queued or claimed), and those still claimed.
    unfinished_after_stop: int
    running_after_stop: int
    restarted: Dam
    first_ingest_output: str
    rerun_output: str
    digests: set[str]


@pytest.fixture(scope="module")
def sigterm_during_ingest(tmp_path_factory: pytest.TempPathFactory, pg_server_uri: str,
                          held_annotation: InProcessAnnotation):
    # A short grace: the jobs held in the annotation service at the stop outlast it and must be released.
    dam = start_dam(tmp_path_factory.mktemp("shutdown-dam"), pg_server_uri, held_annotation.port,
                    held_annotation.repository, MAAM_DAM__ANNOTATION_MODELS=json.dumps(MODELS),
                    MAAM_DAM__JOB_LEASE_S=LEASE_S, MAAM_DAM__SHUTDOWN_GRACE_S="1")
    folder = tmp_path_factory.mktemp("photos")
    digests = set()
    for i in range(ASSETS):
        data = png_bytes(20_000 + i, size=8)
        (folder / f"img_{i:03d}.png").write_bytes(data)
        digests.add(hashlib.sha256(data).hexdigest())
    with dam.user("shutdown@example.org") as client:
        api_key = client.post("/api/users/me/api-keys", json={"name": "ingest"}).json()["key"]

    def ingest(target: Dam) -> ServiceProcess:
        env = child_env(**{k: v for k, v in target.env.items() if k.startswith("MAAM_")},
                        MAAM_DAM__URL=target.url, MAAM_DAM__API_KEY=api_key)
        return ServiceProcess([sys.executable, "-m", "services.dam.cli", "ingest", str(folder),
                               "--project", "shutdown"], env=env)

    first = ingest(dam)
    restarted = None
    try:
        wait_until(lambda: _count(dam, "SELECT count(*) FROM assets") >= 20, 60, interval=0.05,
                   what="the first uploads")
        assert first.alive(), "the ingest finished before the DAM was stopped; the test needs more assets"
        # Claimed jobs at the stop, for certain: the detector is held, so the streams in flight wait on it.
        held_annotation.hold("test_detector")
        wait_until(lambda: _count(dam, "SELECT count(*) FROM annotation_jobs WHERE state = 'running'") >= 1, 60,
                   interval=0.05, what="a claimed job waiting on the held model")
        dam.process.proc.send_signal(signal.SIGTERM)
        dam.process.proc.wait(60)
        # uvicorn re-raises the signal it handled, once its graceful shutdown is done.
        assert dam.process.proc.returncode in (0, -signal.SIGTERM), dam.process.output[-4000:]
        assert "Application shutdown complete" in dam.process.output
        first.proc.wait(120)
        first.stop()
        held_annotation.release()
        stored = _count(dam, "SELECT count(*) FROM assets")
        running = _count(dam, "SELECT count(*) FROM annotation_jobs WHERE state = 'running'")
        unfinished = _count(dam, "SELECT count(*) FROM annotation_jobs WHERE state IN ('queued', 'running')")
        # Every acknowledged upload was stored together with its outbox row.
        assert _count(dam, "SELECT count(*) FROM assets a WHERE NOT EXISTS "
                           "(SELECT 1 FROM annotation_jobs j WHERE j.asset_id = a.id)") == 0
        dam.process.stop()

        restarted = _restart(dam)
        rerun = ingest(restarted)
        rerun.proc.wait(180)
        assert rerun.stop() == 0, rerun.output
        wait_until(lambda: _count(restarted, "SELECT count(*) FROM assets WHERE annotation_state = 'done'") == ASSETS,
                   240, interval=0.5, what="every asset annotated after the restart")
        yield Outcome(stored, unfinished, running, restarted, first.output, rerun.output, digests)
    finally:
        held_annotation.release()
        first.stop()
        dam.process.stop()
        if restarted is not None:
            restarted.process.stop()


def test_sigterm_during_ingest_loses_nothing(sigterm_during_ingest: Outcome) -> None:
    outcome = sigterm_during_ingest
    dam = outcome.restarted
    assert 0 < outcome.stored_at_stop < ASSETS
    # The interrupted ingest said so, and the re-run uploaded exactly what was missing.
    assert "Run the same command again to resume" in outcome.first_ingest_output.replace("\n", " ")
    rerun = " ".join(outcome.rerun_output.split())
    assert f"uploaded {ASSETS - outcome.stored_at_stop}, already there {outcome.stored_at_stop}" in rerun
    # Nothing lost, nothing twice: one asset per file, one job per asset, one result per (asset, model).
    stored = {row[0] for row in _query(dam, "SELECT sha256 FROM assets")}
    assert stored == outcome.digests and _count(dam, "SELECT count(*) FROM assets") == ASSETS
    blobs = dam.data_dir / "dam" / "blobs"
    for sha in outcome.digests:  # the bytes themselves, content-addressed
        assert hashlib.sha256((blobs / sha[:2] / sha[2:4] / sha).read_bytes()).hexdigest() == sha
    assert _query(dam, "SELECT state, count(*) FROM annotation_jobs GROUP BY 1") == [("done", ASSETS)]
    per_model = _query(dam, "SELECT model, count(*), count(DISTINCT asset_id) FROM annotations GROUP BY 1")
    assert sorted(per_model) == [(m, ASSETS, ASSETS) for m in sorted(MODELS)]


def test_graceful_stop_releases_every_claimed_job(sigterm_during_ingest: Outcome) -> None:
    assert sigterm_during_ingest.unfinished_after_stop >= 1  # jobs were held in flight at the stop
    assert sigterm_during_ingest.running_after_stop == 0  # ... and none stays claimed
