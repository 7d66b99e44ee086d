"""One contract, two search backends: `postgres` (real PostgreSQL + pgvector) and `elasticsearch`
(only with MAAM_TEST_ELASTICSEARCH_URL; skipped with that reason otherwise)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.dam.core.config import DamOptions, DamSettings
from services.dam.core.db import Database, run_migrations
from services.dam.search.base import SearchBackend, SearchDoc, SearchQuery
from tests.dam.conftest import fresh_database

DIM = 4
ES_URL = os.environ.get("MAAM_TEST_ELASTICSEARCH_URL")


def _docs() -> list[SearchDoc]:
    def at(month: int, day: int) -> datetime:
        return datetime(2026, month, day, 12, tzinfo=UTC)

    return [
        SearchDoc(1, 1, "private", "image", "image/png", at(1, 15), title="Gargoyles of Notre Dame",
                  captions="stone statues on a cathedral roof", objects=["bird", "person"], nsfw=False, meme=False,
                  annotation_types=["captioning", "object_detection"], embedding=[1, 0, 0, 0]),
        SearchDoc(2, 1, "public", "image", "image/jpeg", at(2, 10), title="Harbour at dusk", tags=["boat", "sea"],
                  ocr_text="FERRY TERMINAL", objects=["boat"], nsfw=True, annotation_types=["ocr"],
                  embedding=[0.9, 0.1, 0, 0]),
        SearchDoc(3, 2, "private", "video", "video/mp4", at(2, 20), title="Gargoyle timelapse", objects=["bird"],
                  faces=2, meme=True, embedding=[0, 1, 0, 0]),
        SearchDoc(4, 2, "public", "model3d", "model/obj", at(3, 1), title="Cathedral model", labels=["rainbow flag"],
                  project_ids=[7]),
        SearchDoc(5, 1, "private", "image", "image/gif", at(3, 5), title="Cat meme <script>alert(1)</script>",
                  meme=True, disturbing=True, project_ids=[7], embedding=[0, 0, 1, 0]),
    ]


async def _postgres(server_uri: str) -> AsyncIterator[SearchBackend]:
    from services.dam.search.postgres import PostgresSearch

    url = fresh_database(server_uri)
    run_migrations(url, DIM)
    db = Database(url, DamSettings(dam=DamOptions(database_url=url)))
    async with db.sessions.begin() as session:  # search_docs rows belong to real users and assets
        for uid in (1, 2):
            await session.execute(text("INSERT INTO users (id, email, password_hash) VALUES (:i, :e, 'x')"),
                                  {"i": uid, "e": f"u{uid}@example.org"})
        for doc in _docs():
            await session.execute(text(
                "INSERT INTO assets (id, owner_id, mime, kind, size, sha256) VALUES (:i, :o, :m, :k, 1, :s)"),
                {"i": doc.asset_id, "o": doc.owner_id, "m": doc.mime, "k": doc.kind, "s": f"{doc.asset_id:064d}"})
    backend = PostgresSearch(db.sessions, ef_search=100)
    try:
        yield backend
    finally:
        await db.close()


async def _elasticsearch() -> AsyncIterator[SearchBackend]:
    from services.dam.search.elasticsearch import ElasticsearchSearch

    backend = ElasticsearchSearch(ES_URL or "", f"maam-contract-{uuid.uuid4().hex[:8]}", DIM)
    await backend.ensure_index()
    try:
        yield backend
    finally:
        await backend._es.indices.delete(index=backend.index, ignore_unavailable=True)
        await backend.close()


@pytest.fixture(params=["postgres", "elasticsearch"])
async def backend(request, pg_server_uri) -> AsyncIterator[SearchBackend]:
    if request.param == "elasticsearch" and not ES_URL:
        pytest.skip("MAAM_TEST_ELASTICSEARCH_URL is not set: no Elasticsearch server to run the contract against")
    factory = _postgres(pg_server_uri) if request.param == "postgres" else _elasticsearch()
    async for instance in factory:
        for doc in _docs():
            await instance.upsert(doc)
        await instance.refresh()
        yield instance


async def _ids(backend: SearchBackend, **kw) -> list[int]:
    kw.setdefault("viewer_id", 1)
    return [h.asset_id for h in (await backend.search(SearchQuery(**kw))).hits]


async def test_text_search_respects_visibility_and_stems(backend):
    assert sorted(await _ids(backend, q="gargoyle")) == [1]
    assert sorted(await _ids(backend, q="gargoyle", viewer_id=2)) == [3]
    assert sorted(await _ids(backend, q="gargoyle", is_admin=True)) == [1, 3]
    assert sorted(await _ids(backend, q="cathedral")) == [1, 4]  # caption of 1, title of 4
    assert await _ids(backend, q="ferry") == [2]  # OCR text
    assert await _ids(backend, q="boat", kinds=["image"]) == [2]  # tags
    assert await _ids(backend, q="submarine") == []


async def test_highlights_mark_matches_and_escape_html(backend):
    page = await backend.search(SearchQuery(viewer_id=1, q="meme"))
    (hit,) = page.hits
    fragment = hit.highlights["title"][0]
    assert "<mark>meme</mark>" in fragment.lower()
    assert "<script>" not in fragment


async def test_filters(backend):
    assert sorted(await _ids(backend, objects=["bird"])) == [1]
    assert sorted(await _ids(backend, objects=["bird"], is_admin=True)) == [1, 3]
    assert await _ids(backend, objects=["bird", "person"]) == [1]
    assert sorted(await _ids(backend, nsfw="exclude")) == [1, 4, 5]
    assert await _ids(backend, nsfw="only") == [2]
    assert await _ids(backend, meme="only") == [5]
    assert 5 not in await _ids(backend, disturbing="exclude")
    assert await _ids(backend, faces=True, is_admin=True) == [3]
    assert sorted(await _ids(backend, kinds=["video", "model3d"], is_admin=True)) == [3, 4]
    feb = {"uploaded_from": datetime(2026, 2, 1, tzinfo=UTC), "uploaded_to": datetime(2026, 3, 1, tzinfo=UTC)}
    assert sorted(await _ids(backend, is_admin=True, **feb)) == [2, 3]
    assert sorted(await _ids(backend, owner_id=2)) == [4]  # owner 2's private video stays hidden
    assert sorted(await _ids(backend, project_id=7)) == [4, 5]
    assert await _ids(backend, labels=["rainbow flag"]) == [4]
    assert sorted(await _ids(backend, asset_ids=[1, 3, 5])) == [1, 5]


async def test_facets(backend):
    facets = (await backend.search(SearchQuery(viewer_id=1))).facets
    assert facets["kind"] == {"image": 3, "model3d": 1}
    assert facets["objects"] == {"bird": 1, "boat": 1, "person": 1}
    assert facets["nsfw"] == {"false": 1, "true": 1, "unknown": 2}
    assert facets["meme"] == {"false": 1, "true": 1, "unknown": 2}
    assert facets["month"] == {"2026-01": 1, "2026-02": 1, "2026-03": 2}
    assert facets["annotation_types"] == {"captioning": 1, "object_detection": 1, "ocr": 1}
    filtered = (await backend.search(SearchQuery(viewer_id=1, q="gargoyle"))).facets
    assert filtered["kind"] == {"image": 1}


async def test_knn_alone_and_combined(backend):
    page = await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0]))
    assert [h.asset_id for h in page.hits] == [1, 2, 5]  # 4 has no vector; 3 is private to user 2
    assert page.hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert page.hits[1].score == pytest.approx(0.9 / (0.82 ** 0.5), abs=1e-3)
    assert page.hits[2].score == pytest.approx(0.0, abs=1e-4)
    assert await _ids(backend, vector=[0, 1, 0, 0], is_admin=True, size=1) == [3]
    assert await _ids(backend, vector=[1, 0, 0, 0], exclude_ids=[1]) == [2, 5]
    assert await _ids(backend, vector=[1, 0, 0, 0], nsfw="exclude") == [1, 5]
    assert await _ids(backend, vector=[0, 0, 1, 0], q="meme") == [5]
    assert await _ids(backend, vector=[1, 0, 0, 0], min_score=0.5) == [1, 2]


async def test_paging_and_browse_order(backend):
    everything = await backend.search(SearchQuery(viewer_id=1, size=2))
    assert everything.total == 4 and everything.total_relation == "eq"
    assert [h.asset_id for h in everything.hits] == [5, 4]  # newest first
    second = await _ids(backend, size=2, page=2)
    assert second == [2, 1]
    assert await _ids(backend, size=2, page=3) == []


async def test_upsert_replaces_and_delete_removes(backend):
    doc = _docs()[0]
    doc.title = "Chimeras of Notre Dame"
    await backend.upsert(doc)
    await backend.delete(2)
    await backend.refresh()
    assert await _ids(backend, q="chimera") == [1]
    assert await _ids(backend, q="gargoyle") == []
    assert 2 not in await _ids(backend)
    await backend.delete(2)  # deleting twice is harmless
