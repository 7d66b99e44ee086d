"""The facet counts PostgreSQL keeps (migration 0008, services/dam/search/facet_counts.py) equal the scan of the
documents after any mix of inserts, updates, visibility moves, deletes (also by cascade) and concurrent
writers; folding keeps them equal and short."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.dam.core.config import DamOptions, DamSettings
from services.dam.core.db import Database, run_migrations
from services.dam.people.documents import PERSON_LABEL
from services.dam.search import facet_counts
from services.dam.search.base import SearchDoc, SearchQuery
from services.dam.search.postgres import PostgresSearch, where_clause
from tests.dam.conftest import fresh_database

USERS = (1, 2, 3)
KINDS = ("image", "video")
OBJECTS = ("cat", "dog", "car", "boat", "person")
SPACES = {"clip": 4, "visual": 6}


@pytest.fixture
async def db(pg_server_uri: str):
    url = fresh_database(pg_server_uri)
    run_migrations(url)
    database = Database(url, DamSettings(dam=DamOptions(database_url=url)))
    async with database.sessions.begin() as session:
        for uid in USERS:
            await session.execute(text("INSERT INTO users (id, email, password_hash) VALUES (:i, :e, 'x')"),
                                  {"i": uid, "e": f"u{uid}@example.org"})
        for i in range(1, 201):
            await session.execute(text(
                "INSERT INTO assets (id, owner_id, mime, kind, size, sha256) VALUES (:i, :o, 'image/png', 'image', "
                "1, :s)"), {"i": i, "o": USERS[i % 3], "s": f"{i:064d}"})
    yield database
    await database.close()


def _doc(rng: random.Random, asset_id: int, version: int) -> SearchDoc:
    return SearchDoc(
        asset_id, USERS[asset_id % 3], rng.choice(("public", "private")), rng.choice(KINDS), "image/png",
        datetime(2026, rng.randint(1, 12), rng.randint(1, 28), 23, 30, tzinfo=UTC),
        # Duplicates in an array count twice in the scan, so they must in the kept counts too.
        objects=[rng.choice(OBJECTS) for _ in range(rng.randint(0, 4))],
        nsfw=rng.choice((True, False, None)), meme=rng.choice((True, False, None)),
        annotation_types=rng.sample(["captioning", "object_detection", "ocr"], rng.randint(0, 3)),
        labels=rng.sample([f"{PERSON_LABEL}1", f"{PERSON_LABEL}2", "rainbow flag"], rng.randint(0, 3)),
        # Vectors in none, one or both spaces: a kNN counts the documents of its own space only.
        embeddings={name: [rng.random() + 0.1 for _ in range(dim)] for name, dim in SPACES.items()
                    if rng.random() < 0.6},
        version=version)


QUERIES = [SearchQuery(viewer_id=u) for u in USERS] + [
    SearchQuery(viewer_id=1, is_admin=True), SearchQuery(viewer_id=2, kinds=["video"]),
    SearchQuery(viewer_id=1, owner_id=1), SearchQuery(viewer_id=1, owner_id=2, kinds=["image", "video"]),
    SearchQuery(viewer_id=3, is_admin=True, owner_id=3),
    # kNNs ("similar to" leaves its asset out; a project's recommendations its members).
    SearchQuery(viewer_id=1, vector=[1.0] * 4, vector_model="clip"),
    SearchQuery(viewer_id=2, vector=[1.0] * 6, vector_model="visual", kinds=["image"], exclude_ids=[2, 5, 8]),
    SearchQuery(viewer_id=3, is_admin=True, vector=[1.0] * 4, vector_model="clip", exclude_ids=list(range(40))),
    SearchQuery(viewer_id=3, owner_id=3, exclude_ids=[3, 6, 9, 999]),
]


async def _scanned(backend: PostgresSearch, db: Database, query: SearchQuery) -> tuple[dict[str, dict[str, int]], int]:
    space = await backend._known_space(query.vector_model) if query.vector_model else None
    where, params = where_clause(query, space)
    source = "search_docs d" if space is None else \
        "search_vectors v JOIN search_docs d ON d.asset_id = v.asset_id"
    async with db.sessions() as session:
        total = (await session.execute(text(f"SELECT count(*) FROM {source} WHERE {where}"), params)).scalar_one()
        return await backend._facets(session, source, where, params, space), total


async def _assert_kept_equal_scan(backend: PostgresSearch, db: Database) -> None:
    for query in QUERIES:
        assert facet_counts.serves(query)
        page = await backend.search(query)
        facets, total = await _scanned(backend, db, query)
        assert (page.facets, page.total, page.total_relation) == (facets, total, "eq"), query
        unfaceted = await backend.search(SearchQuery(**{**query.__dict__, "facets": False}))
        assert (unfaceted.facets, unfaceted.total) == ({}, total)
    # The scan's answer is not empty, so the equality above compares something.
    assert sum((await backend.search(QUERIES[3])).facets["kind"].values()) > 0


async def test_kept_counts_equal_the_scan_through_random_writes(db: Database) -> None:
    rng = random.Random(7)
    backend = PostgresSearch(db.sessions)
    alive = list(range(1, 190))  # 190.. go by cascade, one per round
    for version, _round in enumerate(range(6), start=1):
        batch = rng.sample(alive, 40)
        await backend.upsert_many([_doc(rng, i, version) for i in batch])
        await backend.delete_many(rng.sample(range(1, 201), 10))
        async with db.sessions.begin() as session:  # moves and edits outside the backend's own statements
            await session.execute(text("UPDATE search_docs SET visibility = CASE visibility WHEN 'public' "
                                       "THEN 'private' ELSE 'public' END WHERE asset_id % 7 = :r"), {"r": _round})
            await session.execute(text("UPDATE search_docs SET title = 'renamed' WHERE asset_id % 5 = 0"))
            await session.execute(text("DELETE FROM assets WHERE id = :i"), {"i": 190 + _round})  # cascade
        await _assert_kept_equal_scan(backend, db)
    # A stale write (an older version) changes neither the document nor the counts.
    async with db.sessions() as session:
        present = list((await session.execute(text("SELECT asset_id FROM search_docs"))).scalars())
    before = (await backend.search(QUERIES[3])).facets
    await backend.upsert_many([_doc(rng, i, 0) for i in present])
    assert (await backend.search(QUERIES[3])).facets == before


async def test_facets_and_totals_of_narrower_searches_still_come_from_the_scan() -> None:
    for query in (SearchQuery(viewer_id=1, q="cat"), SearchQuery(viewer_id=1, objects=["cat"]),
                  SearchQuery(viewer_id=1, nsfw="exclude"), SearchQuery(viewer_id=1, project_id=3),
                  SearchQuery(viewer_id=1, has_text=True),
                  SearchQuery(viewer_id=1, vector=[1.0] * 4, vector_model="clip", min_score=0.5),
                  SearchQuery(viewer_id=1, exclude_ids=list(range(facet_counts.MAX_EXCLUDED + 1)))):
        assert not facet_counts.serves(query)


async def test_concurrent_writers_neither_wait_on_each_other_nor_lose_counts(db: Database) -> None:
    rng = random.Random(11)
    backend = PostgresSearch(db.sessions)
    docs = [_doc(rng, i, 1) for i in range(1, 201)]
    # Eight writers at once over overlapping facet keys: appends, so no lock order to deadlock on.
    await asyncio.gather(*(backend.upsert_many(docs[k::8]) for k in range(8)))
    await asyncio.gather(*(backend.upsert_many([_doc(rng, d.asset_id, 2) for d in docs[k::8]]) for k in range(8)))
    await _assert_kept_equal_scan(backend, db)


async def test_reads_and_writes_fold_spread_rows_and_the_counts_stay_equal(db: Database) -> None:
    rng = random.Random(3)
    backend = PostgresSearch(db.sessions)
    backend.fold_every = 10**9  # the write-side fold, checked below
    for version in range(1, 31):  # 30 rewrites of every document: thousands of appended rows
        await backend.upsert_many([_doc(rng, i, version) for i in range(1, 201)])

    async def rows(where: str = "TRUE") -> tuple[int, int]:
        async with db.sessions() as session:
            return tuple((await session.execute(text(
                "SELECT count(*), count(DISTINCT (space_id, owner_id, public, kind, facet, key)) "
                f"FROM search_facet_deltas WHERE {where}"))).one())

    spread = await rows()
    await backend.search(SearchQuery(viewer_id=1, is_admin=True))  # reads every document of space 0: folds it
    folded, keys = await rows("space_id = 0")
    assert spread[0] > 3000 and folded == keys, (spread, folded, keys)
    assert (await rows("space_id <> 0"))[0] > 1000  # not read, not folded
    await _assert_kept_equal_scan(backend, db)
    # Rows no read folds (spaces or owners nobody browses) are folded by the writes, every `fold_every` docs.
    backend.fold_every = 200
    await backend.upsert_many([_doc(rng, i, 31) for i in range(1, 201)])
    folded, keys = await rows()
    assert folded == keys, (folded, keys)
    await _assert_kept_equal_scan(backend, db)


async def test_a_folded_scope_of_many_owners_is_not_folded_again_until_appended_rows_outnumber_it(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fully folded, an admin's scope still has one row per owner, visibility, kind and key: several per
    # distinct key. Before the rows were marked, every read of it folded again (4-5 ms of a browse at 10k).
    rng = random.Random(11)
    backend = PostgresSearch(db.sessions)
    backend.fold_every = 10**9
    monkeypatch.setattr(facet_counts, "_FOLD_SLACK", 0)
    folds = 0
    real_fold = facet_counts.fold

    async def counted_fold(*args, **kwargs) -> None:
        nonlocal folds
        folds += 1
        await real_fold(*args, **kwargs)

    monkeypatch.setattr(facet_counts, "fold", counted_fold)
    for version in range(1, 4):
        await backend.upsert_many([_doc(rng, i, version) for i in range(1, 201)])
    admin = SearchQuery(viewer_id=1, is_admin=True)
    await backend.search(admin)
    assert folds == 1
    async with db.sessions() as session:
        folded, keys, distinct_keys, unfolded = (await session.execute(text(
            "SELECT count(*) FILTER (WHERE folded), count(DISTINCT (owner_id, public, kind, facet, key)), "
            "count(DISTINCT (facet, key)), count(*) FILTER (WHERE NOT folded) "
            "FROM search_facet_deltas WHERE space_id = 0"))).one()
    assert (folded, unfolded) == (keys, 0) and folded > 2 * distinct_keys, (folded, keys, distinct_keys)
    for _ in range(3):
        await backend.search(admin)
    assert folds == 1  # nothing appended since: the folded rows are as short as they get
    await backend.upsert_many([_doc(rng, i, 4) for i in range(1, 11)])  # fewer rows than the folded ones
    await backend.search(admin)
    assert folds == 1
    for version in range(5, 8):  # now more appended rows than folded ones
        await backend.upsert_many([_doc(rng, i, version) for i in range(1, 201)])
    await backend.search(admin)
    assert folds == 2
    await _assert_kept_equal_scan(backend, db)


async def test_a_browse_past_the_exact_total_says_at_least_as_a_search_does(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    backend = PostgresSearch(db.sessions)
    await backend.upsert_many([_doc(rng, i, 1) for i in range(1, 41)])
    monkeypatch.setattr("services.dam.search.postgres.TOTAL_EXACT_UP_TO", 5)
    browse = await backend.search(SearchQuery(viewer_id=1, is_admin=True))
    for narrower in (SearchQuery(viewer_id=1, is_admin=True, has_text=False),  # total from its scanned facets
                     SearchQuery(viewer_id=1, is_admin=True, has_text=False, facets=False)):  # counted
        page = await backend.search(narrower)
        assert (browse.total, browse.total_relation) == (page.total, page.total_relation) == (5, "gte")


async def test_a_search_in_the_callers_session_checks_out_no_connection_and_its_fold_is_kept(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # A request's session runs the search (one connection per request); the read never writes in it, and when
    # its scope is spread the fold runs in a transaction of its own, so closing the request's session (a
    # rollback) loses nothing.
    from sqlalchemy import event

    rng = random.Random(13)
    backend = PostgresSearch(db.sessions)
    backend.fold_every = 10**9
    monkeypatch.setattr(facet_counts, "_FOLD_SLACK", 0)
    await backend.start(SPACES)
    for version in range(1, 4):
        await backend.upsert_many([_doc(rng, i, version) for i in range(1, 201)])
    checkouts = 0

    def count(*_args: object) -> None:
        nonlocal checkouts
        checkouts += 1

    event.listen(db.engine.sync_engine.pool, "checkout", count)
    try:
        async with db.sessions() as session:
            await session.execute(text("SELECT 1"))  # the request's own statements hold its connection
            before = checkouts
            browse = await backend.search(SearchQuery(viewer_id=1, is_admin=True), session)
            knn = await backend.search(SearchQuery(viewer_id=1, is_admin=True, vector=[1, 0, 0, 0],
                                                   vector_model="clip", exclude_ids=[3]), session)
            folding = checkouts - before  # each spread scope's fold: one transaction of its own
            before = checkouts
            again = await backend.search(SearchQuery(viewer_id=1, is_admin=True), session)
            assert checkouts == before  # folded: nothing but the caller's connection
            assert again.facets == browse.facets and again.total == browse.total
            assert (await session.execute(text("SHOW enable_seqscan"))).scalar_one() == "on"
        assert folding == 2, folding  # the browse's scope and the kNN's (its space), nothing else
    finally:
        event.remove(db.engine.sync_engine.pool, "checkout", count)
    async with db.sessions() as session:
        unfolded = (await session.execute(text(
            "SELECT count(*) FROM search_facet_deltas WHERE space_id = 0 AND NOT folded"))).scalar_one()
    assert unfolded == 0  # the fold was committed, not rolled back with the caller's session
    own = await backend.search(SearchQuery(viewer_id=1, is_admin=True, vector=[1, 0, 0, 0], vector_model="clip",
                                           exclude_ids=[3]))
    assert (own.total, own.facets, [h.asset_id for h in own.hits]) == (
        knn.total, knn.facets, [h.asset_id for h in knn.hits])
    await _assert_kept_equal_scan(backend, db)
