"""`maam serve dam` with MAAM_DAM__PROCESSES=2: two server processes share the port, the data folder and the
database; uploads to either are annotated; a server process killed with SIGKILL is replaced and nothing it
acknowledged is lost; SIGTERM stops every process through the graceful path."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.dam.conftest import png_bytes, start_dam, upload, wait_annotated

pytestmark = pytest.mark.slow


def _servers(pid: int) -> list[psutil.Process]:
    """The supervisor's server processes (multiprocessing spawns them; its resource tracker is not one)."""
    return [p for p in psutil.Process(pid).children() if "spawn_main" in " ".join(p.cmdline())]


def test_two_server_processes_share_the_work_survive_a_sigkill_and_stop_on_sigterm(
        tmp_path, pg_server_uri, annotation_server) -> None:
    dam = start_dam(tmp_path, pg_server_uri, annotation_server.port, annotation_server.repository,
                    MAAM_DAM__PROCESSES="2", MAAM_DAM__WORKERS="2", MAAM_DAM__JOB_LEASE_S="5")
    supervisor = dam.process.proc.pid
    try:
        servers = _servers(supervisor)
        assert len(servers) == 2 and all(p.is_running() for p in servers)
        # The supervisor holds the data folder's node: the server processes claim as temporary nodes.
        with dam.user("multi@example.org") as client:
            ids = []
            for seed in range(8):
                reply = upload(client, png_bytes(seed), f"m{seed}.png", title=f"multi {seed}")
                assert reply.status_code == 201, reply.text
                ids.append(reply.json()["id"])
            # One server process dies mid-stream: the supervisor starts another; the survivor answers meanwhile.
            victim = servers[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            for seed in range(8, 16):
                reply = upload(client, png_bytes(seed), f"m{seed}.png", title=f"multi {seed}")
                assert reply.status_code == 201, reply.text
                ids.append(reply.json()["id"])
            deadline = time.monotonic() + 60
            while len(_servers(supervisor)) < 2 and time.monotonic() < deadline:
                time.sleep(0.5)
            replaced = _servers(supervisor)
            assert len(replaced) == 2 and victim.pid not in {p.pid for p in replaced}
            # Every acknowledged upload is annotated (a job the killed process held comes back after its lease).
            for asset_id in ids:
                assert wait_annotated(client, asset_id, timeout=120)["annotation_state"] == "done"
            found = client.get("/api/search", params={"q": "multi", "size": 50}).json()
            assert found["total"] == len(ids)
            claimed_by = dam_claims(dam)
            assert claimed_by and all(c.startswith("temporary-") for c in claimed_by), claimed_by
        children = _servers(supervisor)
        assert dam.process.stop() == 0
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in children)
    finally:
        if dam.process.proc.poll() is None:
            os.kill(supervisor, signal.SIGKILL)


def dam_claims(dam) -> set[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(
            "SELECT DISTINCT claimed_by FROM annotation_jobs WHERE claimed_by IS NOT NULL").fetchall()}
