"""Schema migrations keep the data: a database made by revision 0001 (one fixed 16-d embedding size, the
`partial` state) is brought to head, where its vectors live in an embedding space, its search index has a
vector per space with that space's HNSW index, and its states say what they mean; and back."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from services.dam.core.config import DamOptions, DamSettings
from services.dam.core.db import MIGRATIONS_DIR, Database, run_migrations
from services.dam.search.base import SearchQuery
from services.dam.search.postgres import PostgresSearch
from tests.dam.conftest import fresh_database

V1 = [1.0] + [0.0] * 15
V2 = [0.0, 1.0] + [0.0] * 14


def _alembic(url: str, action: str, revision: str, **attributes: object) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        cfg.attributes.update(attributes)
        getattr(command, action)(cfg, revision)
    engine.dispose()


def _vec(values: list[float]) -> str:
    return json.dumps(values)  # pgvector's text input is the JSON array syntax (test fixtures only)


@pytest.fixture
def old_database(pg_server_uri: str) -> str:
    """A 0001 database of a DAM that ran with MAAM_DAM__EMBEDDING_DIM=16, with one asset in each old state."""
    url = fresh_database(pg_server_uri)
    _alembic(url, "upgrade", "0001", embedding_dim=16)
    plain = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain) as conn:
        conn.execute("INSERT INTO users (id, email, password_hash) VALUES (1, 'a@example.org', 'x')")
        for asset_id, state in ((1, "partial"), (2, "partial"), (3, "done")):
            conn.execute("INSERT INTO assets (id, owner_id, visibility, mime, kind, size, sha256, annotation_state) "
                         "VALUES (%s, 1, 'public', 'image/png', 'image', 1, %s, %s)",
                         (asset_id, f"{asset_id:064d}", state))
        conn.execute("INSERT INTO annotation_jobs (asset_id, state) VALUES (1, 'running'), (2, 'done'), (3, 'done')")
        conn.execute("INSERT INTO annotations (asset_id, model, task, state) VALUES (2, 'ocr', 'ocr', 'failed'), "
                     "(2, 'clip', 'cross_modal_embedding', 'done')")
        for asset_id, vector in ((2, V1), (3, V2)):
            conn.execute("INSERT INTO asset_vectors (asset_id, source, model, kind, embedding) "
                         "VALUES (%s, 'clip', 'clip', 'image', %s)", (asset_id, _vec(vector)))
            conn.execute("INSERT INTO search_docs (asset_id, owner_id, visibility, kind, mime, title, uploaded_at, "
                         "embedding, embedding_model) VALUES (%s, 1, 'public', 'image', 'image/png', %s, now(), %s, "
                         "'clip')", (asset_id, f"asset {asset_id}", _vec(vector)))
        conn.execute("INSERT INTO detectors (id, owner_id, name, label, threshold, model) "
                     "VALUES (1, 1, 'd', 'd', 0.5, 'clip')")
        conn.execute("INSERT INTO detector_prototypes (detector_id, model, embedding) VALUES (1, 'clip', %s)",
                     (_vec(V1),))
    return url


def test_upgrade_keeps_vectors_documents_and_states_then_downgrades(old_database: str):
    run_migrations(old_database)  # what the DAM runs at start: to head
    plain = make_url(old_database).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain) as conn:
        assert conn.execute("SELECT name, dim FROM embedding_spaces").fetchall() == [("clip", 16)]
        assert conn.execute("SELECT id, annotation_state, annotation_failed_models FROM assets ORDER BY id"
                            ).fetchall() == [(1, "running", 0), (2, "done", 1), (3, "done", 0)]
        assert conn.execute("SELECT count(*) FROM dam_meta WHERE key = 'embedding_dim'").fetchone() == (0,)
        stored = conn.execute("SELECT asset_id, embedding::text FROM asset_vectors ORDER BY asset_id").fetchall()
        assert [(a, json.loads(v)) for a, v in stored] == [(2, V1), (3, V2)]
        moved = conn.execute("SELECT asset_id, embedding::text FROM search_vectors ORDER BY asset_id").fetchall()
        assert [(a, json.loads(v)) for a, v in moved] == [(2, V1), (3, V2)]
        indexes = [r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'search_vectors' AND indexdef LIKE '%hnsw%'")]
        assert len(indexes) == 1 and "vector(16)" in indexes[0] and "space_id = 1" in indexes[0]
        assert conn.execute("SELECT count(*) FROM detector_prototypes").fetchone() == (1,)
        # An installation that has users already has its first admin: no registration becomes one by itself.
        assert conn.execute("SELECT user_id FROM dam_first_admin").fetchall() == [(1,)]
        # Another dimension now fits beside the old one (no reset).
        conn.execute("INSERT INTO asset_vectors (asset_id, source, model, kind, embedding) "
                     "VALUES (3, 'visual', 'visual', 'image', %s)", (_vec([0.5] * 24),))

    async def knn() -> list[int]:
        db = Database(old_database, DamSettings(dam=DamOptions(database_url=old_database)))
        try:
            page = await PostgresSearch(db.sessions).search(
                SearchQuery(viewer_id=1, vector=V1, vector_model="clip", facets=False))
            return [h.asset_id for h in page.hits]
        finally:
            await db.close()

    assert asyncio.run(knn()) == [2, 3]  # the migrated index answers in its space

    with psycopg.connect(plain) as conn:  # a second dimension blocks the way back, with the reason
        conn.execute("INSERT INTO embedding_spaces (name, dim) VALUES ('visual', 24)")
    with pytest.raises(RuntimeError, match="2 dimensions"):
        _alembic(old_database, "downgrade", "0001")
    with psycopg.connect(plain) as conn:
        conn.execute("DELETE FROM asset_vectors WHERE model = 'visual'")
        conn.execute("DELETE FROM embedding_spaces WHERE name = 'visual'")
    _alembic(old_database, "downgrade", "0001")
    with psycopg.connect(plain) as conn:
        assert conn.execute("SELECT id, annotation_state FROM assets ORDER BY id").fetchall() == [
            (1, "partial"), (2, "partial"), (3, "done")]
        assert conn.execute("SELECT value FROM dam_meta WHERE key = 'embedding_dim'").fetchone() == ("16",)
        back = conn.execute("SELECT asset_id, embedding_model, embedding::text FROM search_docs ORDER BY 1").fetchall()
        assert [(a, m, json.loads(v)) for a, m, v in back] == [(2, "clip", V1), (3, "clip", V2)]
