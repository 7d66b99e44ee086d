"""One contract, two search backends: `postgres` (real PostgreSQL + pgvector) and `elasticsearch`
(only with MAAM_TEST_ELASTICSEARCH_URL; skipped with that reason otherwise)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.dam.core.config import DamOptions, DamSettings
from services.dam.core.db import Database, run_migrations
from services.dam.search.base import (
    MAX_KNN_WINDOW,
    MAX_RESULT_WINDOW,
    QueryError,
    SearchBackend,
    SearchDoc,
    SearchQuery,
)
from tests.dam.conftest import fresh_database

ES_URL = os.environ.get("MAAM_TEST_ELASTICSEARCH_URL")
# Two embedding spaces of different sizes: "clip" (4-d, most documents) and "visual" (6-d, two of them).
CLIP, VISUAL = "clip", "visual"
SPACES = {CLIP: 4, VISUAL: 6}


def _docs() -> list[SearchDoc]:
    def at(month: int, day: int) -> datetime:
        return datetime(2026, month, day, 12, tzinfo=UTC)

    return [
        SearchDoc(1, 1, "private", "image", "image/png", at(1, 15), title="Gargoyles of Notre Dame",
                  captions="stone statues on a cathedral roof", objects=["bird", "person"], nsfw=False, meme=False,
                  annotation_types=["captioning", "object_detection"],
                  embeddings={CLIP: [1, 0, 0, 0], VISUAL: [0, 0, 0, 0, 0, 1]}),
        SearchDoc(2, 1, "public", "image", "image/jpeg", at(2, 10), title="Harbour at dusk", tags=["boat", "sea"],
                  ocr_text="FERRY TERMINAL", objects=["boat"], nsfw=True, annotation_types=["ocr"],
                  embeddings={CLIP: [0.9, 0.1, 0, 0]}),
        SearchDoc(3, 2, "private", "video", "video/mp4", at(2, 20), title="Gargoyle timelapse", objects=["bird"],
                  faces=2, meme=True, embeddings={CLIP: [0, 1, 0, 0]}),
        SearchDoc(4, 2, "public", "model3d", "model/obj", at(3, 1), title="Cathedral model", labels=["rainbow flag"],
                  project_ids=[7]),
        SearchDoc(5, 1, "private", "image", "image/gif", at(3, 5), title="Cat meme <script>alert(1)</script>",
                  meme=True, disturbing=True, project_ids=[7],
                  embeddings={CLIP: [0, 0, 1, 0], VISUAL: [1, 0, 0, 0, 0, 0]}),
    ]


async def _postgres(server_uri: str) -> AsyncIterator[SearchBackend]:
    from services.dam.search.postgres import PostgresSearch

    url = fresh_database(server_uri)
    run_migrations(url)
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

    backend = ElasticsearchSearch(ES_URL or "", f"maam-contract-{uuid.uuid4().hex[:8]}")
    try:
        yield backend
    finally:
        await backend._es.indices.delete(index=f"{backend.index}-*", ignore_unavailable=True)
        await backend._es.indices.delete_index_template(name=backend.template, ignore_unavailable=True)
        await backend.close()


@pytest.fixture(params=["postgres", "elasticsearch"])
async def backend(request, pg_server_uri) -> AsyncIterator[SearchBackend]:
    if request.param == "elasticsearch" and not ES_URL:
        pytest.skip("MAAM_TEST_ELASTICSEARCH_URL is not set: no Elasticsearch server to run the contract against")
    factory = _postgres(pg_server_uri) if request.param == "postgres" else _elasticsearch()
    async for instance in factory:
        await instance.start({CLIP: 4})  # VISUAL appears with the first document that has it
        for doc in _docs():
            await instance.upsert(doc)
        await instance.refresh()
        yield instance


async def _ids(backend: SearchBackend, **kw) -> list[int]:
    kw.setdefault("viewer_id", 1)
    if kw.get("vector") is not None:
        kw.setdefault("vector_model", CLIP)
    return [h.asset_id for h in (await backend.search(SearchQuery(**kw))).hits]


async def test_text_search_respects_visibility_and_stems(backend):
    assert sorted(await _ids(backend, q="gargoyle")) == [1]
    assert sorted(await _ids(backend, q="gargoyle", viewer_id=2)) == [3]
    assert sorted(await _ids(backend, q="gargoyle", is_admin=True)) == [1, 3]
    assert sorted(await _ids(backend, q="cathedral")) == [1, 4]  # caption of 1, title of 4
    assert await _ids(backend, q="ferry") == [2]  # OCR text
    assert await _ids(backend, q="boat", kinds=["image"]) == [2]  # tags
    assert await _ids(backend, q="submarine") == []


@pytest.mark.parametrize(("q", "expected"), [
    ('"stone statues"', [1]),  # a phrase: the words in this order, side by side
    ('"statues stone"', []),
    ("gargoyle OR harbour", [1, 2, 3]),  # OR is an operator, not a word to find
    ("gargoyle or ferry", [1, 2, 3]),
    ("gargoyle -timelapse", [1]),  # -word excludes
    ("cathedral -model", [1]),
    ('"notre dame" OR ferry -boat', [1]),  # (phrase) OR (ferry AND NOT boat): 2 has boat
    ('-"notre dame" gargoyle', [3]),
    ("gargoyle cathedral", [1]),  # words of one group may sit in different fields (title, caption)
    ("boat | ferry", [2]),  # other punctuation is no operator (simple_query_string would read `|` as OR)
])
async def test_web_search_syntax(backend, q, expected):
    assert sorted(await _ids(backend, q=q, is_admin=True)) == expected


async def test_highlights_mark_matches_and_escape_html(backend):
    page = await backend.search(SearchQuery(viewer_id=1, q="meme"))
    (hit,) = page.hits
    fragment = hit.highlights["title"][0]
    assert "<mark>meme</mark>" in fragment.lower()
    assert "<script>" not in fragment


async def test_highlights_on_knn_combined_with_text(backend):
    page = await backend.search(SearchQuery(viewer_id=1, q="gargoyles", vector=[1, 0, 0, 0], vector_model=CLIP))
    (hit,) = page.hits
    assert hit.asset_id == 1 and hit.score == pytest.approx(1.0, abs=1e-4)
    assert "<mark>Gargoyles</mark>" in hit.highlights["title"][0]


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
    page = await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0], vector_model=CLIP))
    assert [h.asset_id for h in page.hits] == [1, 2, 5]  # 4 has no vector; 3 is private to user 2
    assert page.space == CLIP
    assert page.hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert page.hits[1].score == pytest.approx(0.9 / (0.82 ** 0.5), abs=1e-3)
    assert page.hits[2].score == pytest.approx(0.0, abs=1e-4)
    assert await _ids(backend, vector=[0, 1, 0, 0], is_admin=True, size=1) == [3]
    assert await _ids(backend, vector=[1, 0, 0, 0], exclude_ids=[1]) == [2, 5]
    assert await _ids(backend, vector=[1, 0, 0, 0], nsfw="exclude") == [1, 5]
    assert await _ids(backend, vector=[0, 0, 1, 0], q="meme") == [5]
    assert await _ids(backend, vector=[1, 0, 0, 0], min_score=0.5) == [1, 2]


async def test_knn_searches_one_embedding_space_only(backend):
    visual = await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0, 0, 0], vector_model=VISUAL))
    assert [h.asset_id for h in visual.hits] == [5, 1]  # only the two documents with a 6-d vector
    assert visual.space == VISUAL and visual.total == 2 and visual.total_relation == "eq"
    assert visual.hits[0].score == pytest.approx(1.0, abs=1e-4) and visual.hits[1].score == pytest.approx(0, abs=1e-4)
    assert visual.facets["kind"] == {"image": 2}  # facets of the space's documents
    clip = await backend.search(SearchQuery(viewer_id=1, vector=[0, 0, 1, 0], vector_model=CLIP))
    assert clip.hits[0].asset_id == 5 and clip.total == 3
    # A space nothing is indexed in finds nothing (and says which it searched); a vector needs its space.
    empty = await backend.search(SearchQuery(viewer_id=1, vector=[1, 0], vector_model="unknown"))
    assert (empty.total, empty.hits, empty.space) == (0, [], "unknown")
    with pytest.raises(QueryError, match="vector_model"):
        await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0]))


async def test_knn_page_two_and_its_total(backend):
    first = await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0], vector_model=CLIP, size=2))
    second = await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0], vector_model=CLIP, size=2, page=2))
    assert [h.asset_id for h in first.hits] == [1, 2] and [h.asset_id for h in second.hits] == [5]
    # The total counts every document the kNN could rank (visible, in the space), not just the k returned.
    assert (first.total, first.total_relation) == (3, "eq") and second.total == 3
    assert first.facets["kind"] == {"image": 3}
    beyond = await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0], vector_model=CLIP, size=2, page=3))
    assert beyond.hits == [] and beyond.total == 3
    # min_score counts only the documents that reach it.
    near = await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0], vector_model=CLIP, min_score=0.5))
    assert near.total == 2 and near.facets["kind"] == {"image": 2}


async def test_paging_and_browse_order(backend):
    everything = await backend.search(SearchQuery(viewer_id=1, size=2))
    assert everything.total == 4 and everything.total_relation == "eq"
    assert [h.asset_id for h in everything.hits] == [5, 4]  # newest first
    second = await _ids(backend, size=2, page=2)
    assert second == [2, 1]
    assert await _ids(backend, size=2, page=3) == []


async def test_deep_pages_are_refused_with_a_message(backend):
    assert await _ids(backend, size=100, page=MAX_RESULT_WINDOW // 100) == []  # the deepest page: allowed
    with pytest.raises(QueryError, match=str(MAX_RESULT_WINDOW)):
        await backend.search(SearchQuery(viewer_id=1, size=100, page=MAX_RESULT_WINDOW // 100 + 1))
    deepest = MAX_KNN_WINDOW // 100
    assert await _ids(backend, vector=[1, 0, 0, 0], size=100, page=deepest) == []
    with pytest.raises(QueryError, match=str(MAX_KNN_WINDOW)):
        await backend.search(SearchQuery(viewer_id=1, vector=[1, 0, 0, 0], vector_model=CLIP, size=100,
                                         page=deepest + 1))


async def test_upsert_replaces_and_delete_removes(backend):
    doc = _docs()[0]
    doc.title, doc.version = "Chimeras of Notre Dame", 1
    await backend.upsert(doc)
    await backend.delete(2)
    await backend.refresh()
    assert await _ids(backend, q="chimera") == [1]
    assert await _ids(backend, q="gargoyle") == []
    assert 2 not in await _ids(backend)
    await backend.delete(2)  # deleting twice is harmless


async def test_an_older_version_never_replaces_a_newer_one(backend):
    newer, older = _docs()[0], _docs()[0]
    newer.title, newer.version = "Chimeras of Notre Dame", 7
    older.title, older.version, older.embeddings = "Stale title", 6, {}
    await backend.upsert(newer)
    await backend.upsert_many([older, _docs()[1]])  # in one bulk with another document
    await backend.refresh()
    assert await _ids(backend, q="chimera") == [1] and await _ids(backend, q="stale") == []
    assert (await _ids(backend, vector=[1, 0, 0, 0]))[0] == 1  # its vectors stayed with the newer version


async def test_bulk_upsert_and_rebuild_while_searching(backend):
    """A rebuild writes every document again; searches running meanwhile always see the whole index."""
    renamed = _docs()
    for doc in renamed:
        doc.title, doc.version = f"{doc.title} v2", 1
    seen: list[int] = []
    stop = asyncio.Event()

    async def search_meanwhile() -> None:
        while not stop.is_set():
            seen.append((await backend.search(SearchQuery(viewer_id=1, is_admin=True, facets=False))).total)
            await asyncio.sleep(0)

    searcher = asyncio.create_task(search_meanwhile())
    try:
        async with backend.rebuild(SPACES) as target:
            for doc in renamed:
                await target.write([doc])
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await searcher
    assert seen and set(seen) == {5}, seen  # never empty, never partial
    await backend.upsert_many([])  # an empty bulk is a no-op
    assert sorted(await _ids(backend, q="v2", is_admin=True)) == [1, 2, 3, 4, 5]
    assert await _ids(backend, vector=[1, 0, 0, 0, 0, 0], vector_model=VISUAL) == [5, 1]


async def test_words_inside_names_and_glued_ocr_runs_are_findable(backend):
    doc = _docs()[0]
    doc.title, doc.filename, doc.tags, doc.version = "astronaut.jpg", "IMG_2041-beachSunset.jpeg", ["sci-fi"], 1
    doc.ocr_text, doc.captions = "Region-basedsegmentation\nhistogram ofgreyvalues", ""
    await backend.upsert(doc)
    await backend.refresh()
    for word in ("astronaut", "beach", "sunset", "fi", "segmentation", "grey values", "histogram"):
        assert await _ids(backend, q=word) == [1], word
    assert await _ids(backend, q="astronaut.jpg") == [1]  # the whole name still matches
    assert await _ids(backend, q="jpeg") == []  # the extension is no word of the name


async def test_annotation_type_and_has_text_filters(backend):
    assert await _ids(backend, annotations=["ocr"], is_admin=True) == [2]
    assert await _ids(backend, annotations=["captioning", "object_detection"], is_admin=True) == [1]
    assert await _ids(backend, has_text=True, is_admin=True) == [2]
    assert 2 not in await _ids(backend, has_text=False, is_admin=True)


async def test_detected_objects_are_words_of_the_text_search(backend):
    """No captioner ships offline: a photo whose detector saw a bird is found by searching "bird" (plural and
    multi-word labels too), not only through the objects facet."""
    doc = _docs()[1]
    doc.objects, doc.version = ["traffic light", "boat"], 1
    await backend.upsert(doc)
    await backend.refresh()
    for words in ("traffic lights", "terminal traffic"):  # stemmed; OCR text and an object in one query
        assert await _ids(backend, q=words) == [2], words
    assert await _ids(backend, q="bird") == [1]  # doc 1 has no bird in its text: its detector saw one
