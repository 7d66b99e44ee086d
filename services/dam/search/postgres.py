"""Search backend `postgres`: tsvector full text, pgvector HNSW kNN (iterative scans), SQL facets.

Documents live in `search_docs`; each asset's whole-image vectors in `search_vectors`, one row per embedding
space, with one partial HNSW index per space (pgvector indexes one dimension per index), so a kNN scans the
index of the space it names and nothing else."""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, bindparam, insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dam.people.documents import PERSON_LABEL
from services.dam.search import facet_counts
from services.dam.search.base import (
    TOTAL_EXACT_UP_TO,
    Hit,
    Rebuild,
    SearchBackend,
    SearchDoc,
    SearchPage,
    SearchQuery,
)
from services.dam.search.words import doc_words
from services.dam.spaces import Space, hnsw_index_sql, register

# Private-use characters mark highlights so the text can be HTML-escaped before <mark> is put in.
_SEL, _ENDSEL = "\ue000", "\ue001"
_HEADLINE_OPTS = f"StartSel={_SEL}, StopSel={_ENDSEL}, MaxFragments=2, MaxWords=20, MinWords=5"
_TEXT_FIELDS = ("title", "description", "tags", "captions", "ocr_text")
TS_CONFIG = "english"
# Two index builds of one new space at once would collide on the catalog; they take turns.
_SPACE_LOCK = 0x6D61616D_0001

_search_vectors = Table(
    "search_vectors", MetaData(),
    Column("asset_id", BigInteger, primary_key=True), Column("space_id", Integer, primary_key=True),
    Column("embedding", Vector()),
)

# A stale write (a document built before the one stored) changes nothing.
_UPSERT = text(f"""
INSERT INTO search_docs (asset_id, owner_id, visibility, kind, mime, title, description, tags, captions, ocr_text,
    objects, faces, nsfw, disturbing, meme, annotation_types, labels, project_ids, uploaded_at, version, space_ids,
    tsv)
VALUES (:asset_id, :owner_id, :visibility, :kind, :mime, :title, :description, :tags, :captions, :ocr_text,
    :objects, :faces, :nsfw, :disturbing, :meme, :annotation_types, :labels, :project_ids, :uploaded_at, :version,
    :space_ids,
    setweight(to_tsvector('{TS_CONFIG}', :title), 'A')
    || setweight(to_tsvector('{TS_CONFIG}', array_to_string(CAST(:tags AS text[]), ' ')), 'A')
    || setweight(to_tsvector('{TS_CONFIG}', :description), 'B')
    || setweight(to_tsvector('{TS_CONFIG}', :captions), 'B')
    || setweight(to_tsvector('{TS_CONFIG}', :ocr_text), 'C')
    || setweight(to_tsvector('{TS_CONFIG}', :name_words), 'A')
    || setweight(to_tsvector('{TS_CONFIG}', :object_words), 'B')
    || setweight(to_tsvector('{TS_CONFIG}', :text_words), 'C'))
ON CONFLICT (asset_id) DO UPDATE SET owner_id = EXCLUDED.owner_id, visibility = EXCLUDED.visibility,
    kind = EXCLUDED.kind, mime = EXCLUDED.mime, title = EXCLUDED.title, description = EXCLUDED.description,
    tags = EXCLUDED.tags, captions = EXCLUDED.captions, ocr_text = EXCLUDED.ocr_text, objects = EXCLUDED.objects,
    faces = EXCLUDED.faces, nsfw = EXCLUDED.nsfw, disturbing = EXCLUDED.disturbing, meme = EXCLUDED.meme,
    annotation_types = EXCLUDED.annotation_types, labels = EXCLUDED.labels, project_ids = EXCLUDED.project_ids,
    uploaded_at = EXCLUDED.uploaded_at, version = EXCLUDED.version, space_ids = EXCLUDED.space_ids,
    tsv = EXCLUDED.tsv
WHERE search_docs.version <= EXCLUDED.version
""")
_DOC_COLUMNS = ("asset_id", "owner_id", "visibility", "kind", "mime", "title", "description", "tags", "captions",
                "ocr_text", "objects", "faces", "nsfw", "disturbing", "meme", "annotation_types", "labels",
                "project_ids", "uploaded_at", "version")


def _tri(column: str, mode: str) -> str | None:
    if mode == "exclude":
        return f"{column} IS NOT TRUE"
    if mode == "only":
        return f"{column} IS TRUE"
    return None


def where_clause(query: SearchQuery, space: Space | None = None) -> tuple[str, dict[str, Any]]:
    """WHERE text over `search_docs d` (and `search_vectors v` for a kNN in `space`): columns and integer ids
    only, never values; the values are bound parameters."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if not query.is_admin:
        parts.append("(d.visibility = 'public' OR d.owner_id = :viewer)")
        params["viewer"] = query.viewer_id
    if query.q:
        parts.append(f"d.tsv @@ websearch_to_tsquery('{TS_CONFIG}', :q)")
        params["q"] = query.q
    if query.kinds:
        parts.append("d.kind = ANY(:kinds)")
        params["kinds"] = query.kinds
    if query.objects:
        parts.append("d.objects @> CAST(:objects AS text[])")
        params["objects"] = query.objects
    if query.labels:
        parts.append("d.labels @> CAST(:labels AS text[])")
        params["labels"] = query.labels
    if query.faces is not None:
        parts.append("d.faces > 0" if query.faces else "d.faces = 0")
    if query.annotations:
        parts.append("d.annotation_types @> CAST(:annotations AS text[])")
        params["annotations"] = query.annotations
    if query.has_text is not None:
        parts.append("d.ocr_text <> ''" if query.has_text else "d.ocr_text = ''")
    for column, mode in (("d.nsfw", query.nsfw), ("d.disturbing", query.disturbing), ("d.meme", query.meme)):
        clause = _tri(column, mode)
        if clause:
            parts.append(clause)
    if query.uploaded_from:
        parts.append("d.uploaded_at >= :uploaded_from")
        params["uploaded_from"] = query.uploaded_from
    if query.uploaded_to:
        parts.append("d.uploaded_at < :uploaded_to")
        params["uploaded_to"] = query.uploaded_to
    if query.owner_id is not None:
        parts.append("d.owner_id = :owner")
        params["owner"] = query.owner_id
    if query.project_id is not None:
        parts.append("d.project_ids @> ARRAY[CAST(:project AS bigint)]")
        params["project"] = query.project_id
    if query.asset_ids is not None:
        parts.append("d.asset_id = ANY(:asset_ids)")
        params["asset_ids"] = query.asset_ids
    if query.exclude_ids:
        parts.append("NOT (d.asset_id = ANY(:exclude_ids))")
        params["exclude_ids"] = query.exclude_ids
    if space is not None:
        # A literal id: the planner matches it against the space's partial index predicate.
        parts.append(f"v.space_id = {int(space.id)}")
        if query.min_score is not None:
            parts.append(f"({_distance(space)}) <= 1 - :min_score")
            params["min_score"] = query.min_score
    return (" AND ".join(parts) or "TRUE"), params


def _distance(space: Space) -> str:
    """Cosine distance to the query vector, written as the space's index expression."""
    return f"(v.embedding::vector({space.dim})) <=> CAST(:vec AS vector({space.dim}))"


def _mark(fragment: str) -> str:
    return html.escape(fragment).replace(_SEL, "<mark>").replace(_ENDSEL, "</mark>")


class _InPlaceRebuild(Rebuild):
    """The index is in the same database: documents are replaced in place, batch by batch (each one a short
    transaction, so searches and live writes never wait on the rebuild), and at the end the documents of
    assets that are gone are dropped. Versions keep a live write from being undone by an older batch."""

    def __init__(self, backend: PostgresSearch) -> None:
        self._backend = backend

    async def write(self, docs: Sequence[SearchDoc]) -> None:
        await self._backend.upsert_many(docs)


class PostgresSearch(SearchBackend):
    name = "postgres"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ef_search: int = 100) -> None:
        self._sessions = sessions
        self._ef_search = ef_search
        self._spaces: dict[str, Space] = {}
        # The kept facet counts are folded by the reads of their scope; every this many written documents
        # the writes fold them all, so the rows of scopes nobody reads stay bounded too.
        self.fold_every = 5000
        self._written = 0

    async def _count_written(self, n: int) -> None:
        self._written += n
        if self._written >= self.fold_every:
            self._written = 0
            async with self._sessions.begin() as session:
                await facet_counts.fold(session)

    async def start(self, spaces: dict[str, int]) -> None:
        for name, dim in spaces.items():
            await self._space(name, dim)

    async def _space(self, name: str, dim: int) -> Space:
        """The registered space, its HNSW index built on first sight."""
        space = self._spaces.get(name)
        if space is not None and space.dim == dim:
            return space
        async with self._sessions.begin() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SPACE_LOCK})
            space = await register(session, name, dim)
            statement = hnsw_index_sql(space)
            if statement:
                await session.execute(text(statement))
        self._spaces[name] = space
        return space

    async def _known_space(self, name: str) -> Space | None:
        if name not in self._spaces:
            async with self._sessions() as session:
                row = (await session.execute(text("SELECT id, dim FROM embedding_spaces WHERE name = :n"),
                                             {"n": name})).first()
            if row is None:
                return None
            self._spaces[name] = Space(int(row.id), name, int(row.dim))
        return self._spaces[name]

    async def upsert_many(self, docs: Sequence[SearchDoc]) -> None:
        if not docs:
            return
        spaces = {name: await self._space(name, len(vec)) for d in docs for name, vec in d.embeddings.items()}
        async with self._sessions.begin() as session:
            # A document lists the spaces it has vectors in: the kept facet counts of a kNN count it there.
            await session.execute(_UPSERT, [
                {c: getattr(d, c) for c in _DOC_COLUMNS} | doc_words(d)
                | {"space_ids": sorted(spaces[name].id for name in d.embeddings)} for d in docs])
            ids = [d.asset_id for d in docs]
            stored = dict((await session.execute(text(
                "SELECT asset_id, version FROM search_docs WHERE asset_id = ANY(:ids)"), {"ids": ids})).all())
            # Vectors follow their document: replaced only where this write's version is the stored one.
            written = [d for d in docs if stored.get(d.asset_id) == d.version]
            if not written:
                return
            await session.execute(text("DELETE FROM search_vectors WHERE asset_id = ANY(:ids)"),
                                  {"ids": [d.asset_id for d in written]})
            rows = [{"asset_id": d.asset_id, "space_id": spaces[name].id, "embedding": vec}
                    for d in written for name, vec in d.embeddings.items()]
            if rows:
                await session.execute(insert(_search_vectors), rows)
        await self._count_written(len(docs))

    async def delete_many(self, asset_ids: Sequence[int]) -> None:
        if asset_ids:
            async with self._sessions.begin() as session:
                await session.execute(text("DELETE FROM search_docs WHERE asset_id = ANY(:ids)"),
                                      {"ids": list(asset_ids)})
            await self._count_written(len(asset_ids))

    @contextlib.asynccontextmanager
    async def rebuild(self, spaces: dict[str, int]) -> AsyncIterator[Rebuild]:
        await self.start(spaces)
        yield _InPlaceRebuild(self)
        async with self._sessions.begin() as session:
            await session.execute(text(
                "DELETE FROM search_docs d WHERE NOT EXISTS "
                "(SELECT 1 FROM assets a WHERE a.id = d.asset_id AND a.deleted_at IS NULL)"))

    @contextlib.asynccontextmanager
    async def _reading(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """The caller's session (its transaction; nothing is written in it), else a transaction of our own."""
        if session is not None:
            yield session
            return
        async with self._sessions.begin() as own:
            yield own

    async def search(self, query: SearchQuery, session: AsyncSession | None = None) -> SearchPage:
        query.check()
        space: Space | None = None
        if query.vector is not None and query.vector_model is not None:
            space = await self._known_space(query.vector_model)
            if space is None or len(query.vector) != space.dim:
                # A space nothing is indexed in (or a vector of another size) finds nothing.
                return SearchPage(total=0, hits=[], space=query.vector_model,
                                  facets=_empty_facets() if query.facets else {})
        where, params = where_clause(query, space)
        source = "search_docs d" if space is None else \
            "search_vectors v JOIN search_docs d ON d.asset_id = v.asset_id"
        params |= {"limit": query.size, "offset": (query.page - 1) * query.size}
        statement = self._statement(query, space, where, source)
        space_id = space.id if space is not None else 0
        spread = False
        async with self._reading(session) as session:
            if space is not None:
                params["vec"] = query.vector
                # Iterative scans keep returning candidates until the filters are satisfied (pgvector 0.8);
                # relaxed order is re-sorted by the outer query.
                # At small tables or large ef_search the planner prices a full scan + sort below the HNSW scan;
                # steer it to an index (HNSW, or a selective GIN filter then sort) for the kNN query only.
                # One round trip for the three (SET LOCAL is set_config(..., true)).
                await session.execute(text(
                    "SELECT set_config('hnsw.ef_search', :ef, true), "
                    "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('enable_seqscan', 'off', true)"), {"ef": str(int(self._ef_search))})
                # In the caller's transaction these last until it ends: only HNSW scans read the first two.
            rows = (await session.execute(statement, params)).all()
            if space is not None:
                await session.execute(text("SET LOCAL enable_seqscan = on"))
            hits = [Hit(asset_id=r[0], score=None if r[1] is None else float(r[1])) for r in rows]
            count_params = {k: v for k, v in params.items() if k not in ("limit", "offset")}
            if space is None or query.min_score is None:
                count_params.pop("vec", None)
            # Every matching document counts once under its kind: where facets are counted, the total is
            # their sum, not one more pass over the matches.
            facets: dict[str, dict[str, int]] = {}
            if facet_counts.serves(query):  # a browse, or a kNN over it: the counts kept as documents change
                kept = await facet_counts.read(session, query, space_id)
                spread = kept.spread
                matched = sum(n for facet, _, n in kept.counts if facet == "kind")
                if query.facets:
                    facets = _top(kept.counts)
            elif query.facets:
                facets = await self._facets(session, source, where, count_params, space)
                matched = sum(facets["kind"].values())
            else:
                count = text(f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where} "
                             f"LIMIT {TOTAL_EXACT_UP_TO + 1}) s")
                if "vec" in count_params and space is not None:
                    count = count.bindparams(bindparam("vec", type_=Vector(space.dim)))
                matched = int((await session.execute(count, count_params)).scalar_one())
            total = min(matched, TOTAL_EXACT_UP_TO)
            relation = "gte" if total == TOTAL_EXACT_UP_TO else "eq"
            if query.q and query.highlight and hits:
                await self._highlight(session, hits, query.q)
        if spread:
            async with self._sessions.begin() as writing:
                await facet_counts.fold_scope(writing, query, space_id)
        return SearchPage(total=total, hits=hits, facets=facets, total_relation=relation,
                          space=space.name if space else None)

    @staticmethod
    def _statement(query: SearchQuery, space: Space | None, where: str, source: str) -> Any:
        if space is not None:
            return text(f"""
            WITH nn AS MATERIALIZED (
                SELECT d.asset_id, {_distance(space)} AS distance FROM {source}
                WHERE {where} ORDER BY {_distance(space)} LIMIT :limit + :offset)
            SELECT asset_id, 1 - distance AS score FROM nn ORDER BY distance, asset_id OFFSET :offset
            """).bindparams(bindparam("vec", type_=Vector(space.dim)))
        if query.q:
            return text(f"""SELECT d.asset_id, ts_rank_cd(d.tsv, websearch_to_tsquery('{TS_CONFIG}', :q)) AS score
            FROM {source} WHERE {where} ORDER BY score DESC, d.asset_id DESC LIMIT :limit OFFSET :offset""")
        return text(f"""SELECT d.asset_id, NULL AS score FROM {source} WHERE {where}
        ORDER BY d.uploaded_at DESC, d.asset_id DESC LIMIT :limit OFFSET :offset""")

    async def _highlight(self, session: AsyncSession, hits: list[Hit], q: str) -> None:
        columns = ", ".join(
            f"ts_headline('{TS_CONFIG}', {'array_to_string(tags, chr(32))' if f == 'tags' else f}, tq, :opts)"
            for f in _TEXT_FIELDS
        )
        rows = await session.execute(
            text(f"SELECT asset_id, {columns} FROM search_docs, websearch_to_tsquery('{TS_CONFIG}', :q) tq "
                 "WHERE asset_id = ANY(:ids)"),
            {"q": q, "ids": [h.asset_id for h in hits], "opts": _HEADLINE_OPTS},
        )
        by_id = {h.asset_id: h for h in hits}
        for row in rows:
            for name, fragment in zip(_TEXT_FIELDS, row[1:], strict=True):
                if fragment and _SEL in fragment:
                    by_id[row[0]].highlights[name] = [_mark(fragment)]

    async def _facets(self, session: AsyncSession, source: str, where: str, params: dict[str, Any],
                      space: Space | None) -> dict[str, dict[str, int]]:
        sql = text(f"""
        WITH f AS MATERIALIZED (SELECT d.kind, d.objects, d.nsfw, d.meme, d.uploaded_at, d.annotation_types,
                                       d.labels FROM {source} WHERE {where})
        SELECT 'kind', kind, count(*) FROM f GROUP BY kind
        UNION ALL SELECT 'objects', o, count(*) FROM f, unnest(objects) o GROUP BY o
        UNION ALL SELECT 'nsfw', coalesce(nsfw::text, 'unknown'), count(*) FROM f GROUP BY 2
        UNION ALL SELECT 'meme', coalesce(meme::text, 'unknown'), count(*) FROM f GROUP BY 2
        UNION ALL SELECT 'month', to_char(uploaded_at AT TIME ZONE 'UTC', 'YYYY-MM'), count(*) FROM f GROUP BY 2
        UNION ALL SELECT 'annotation_types', t, count(*) FROM f, unnest(annotation_types) t GROUP BY t
        UNION ALL SELECT 'people', l, count(*) FROM f, unnest(labels) l WHERE starts_with(l, :person_prefix)
            GROUP BY l""")
        if "vec" in params and space is not None:
            sql = sql.bindparams(bindparam("vec", type_=Vector(space.dim)))
        rows = (await session.execute(sql, {**params, "person_prefix": PERSON_LABEL})).all()
        return _top([(facet, str(key), int(count)) for facet, key, count in rows])


def _top(rows: list[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """Facets from (facet, key, count) rows: the 50 commonest objects and people."""
    facets = _empty_facets()
    for facet, key, count in rows:
        facets[facet][key] = count
    facets["objects"] = dict(sorted(facets["objects"].items(), key=lambda kv: (-kv[1], kv[0]))[:50])
    facets["people"] = dict(sorted(facets["people"].items(), key=lambda kv: (-kv[1], kv[0]))[:50])
    return facets


def _empty_facets() -> dict[str, dict[str, int]]:
    return {name: {} for name in ("kind", "objects", "nsfw", "meme", "month", "annotation_types", "people")}
