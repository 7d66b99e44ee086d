"""`maam dam reindex` rebuilds the index from PostgreSQL; with no MAAM_DATABASE_URL the DAM runs on an
embedded PostgreSQL with pgvector in its data directory."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from tests.dam.conftest import png_bytes, upload, wait_annotated
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy


def test_reindex_rebuilds_the_search_index_from_postgres(dam):
    with dam.user("indexer@example.org") as alice:
        asset = upload(alice, png_bytes(42, pattern="photo"), title="lighthouse keeper").json()
        wait_annotated(alice, asset["id"])
        before = alice.get("/api/search", params={"q": "lighthouse"}).json()
        assert before["total"] == 1
        url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(url) as conn:
            conn.execute("TRUNCATE search_docs CASCADE")  # the index is lost; PostgreSQL tables still hold the truth
        assert alice.get("/api/search", params={"q": "lighthouse"}).json()["total"] == 0
        process = ServiceProcess([sys.executable, "-m", "services.dam.cli", "reindex"], env=dam.env)
        assert process.proc.wait(120) == 0, process.output
        process.stop()
        assert "indexed" in process.output and "reindexing (postgres)" in process.output
        after = alice.get("/api/search", params={"q": "lighthouse"}).json()
        assert after["total"] == 1 and after["facets"]["objects"] == before["facets"]["objects"]
        similar = alice.get("/api/search", params={"similar_to": asset["id"]})
        assert similar.status_code == 200


def test_dam_starts_on_embedded_postgres_with_pgvector(annotation_server):
    data_dir = Path(tempfile.mkdtemp(prefix="maam-dam-embedded-"))
    port = free_port()
    env = child_env(MAAM_DATA_DIR=str(data_dir), MAAM_ANNOTATION__PORT=str(annotation_server.port),
                    MAAM_MODEL_REPOSITORY=str(annotation_server.repository))
    env.pop("MAAM_DATABASE_URL", None)
    process = ServiceProcess([sys.executable, "-m", "services.cli", "serve", "dam", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"

    ready = http_healthy(base)

    try:
        process.wait_ready(ready, timeout=120, what="the DAM on embedded PostgreSQL")
        assert (data_dir / "dam" / "pg" / "PG_VERSION").exists()
        with httpx.Client(base_url=base, timeout=30) as client:
            client.post("/api/auth/register", json={"email": "e@example.org", "password": "long enough"})
            token = client.post("/api/auth/login", data={"username": "e@example.org", "password": "long enough"}
                                ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            asset = upload(client, png_bytes(77, pattern="photo")).json()
            wait_annotated(client, asset["id"])
            assert client.get("/api/search", params={"similar_to": asset["id"]}).status_code == 200
            assert client.get("/docs").status_code == 200 and client.get("/openapi.json").status_code == 200
            assert "maam_dam_uploads_total" in client.get("/metrics").text
    finally:
        process.stop()  # the DAM stops its embedded PostgreSQL on exit
        shutil.rmtree(data_dir, ignore_errors=True)
