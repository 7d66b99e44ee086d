"""Search backend `postgres`: tsvector full text, pgvector HNSW kNN (iterative scans), SQL facets."""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dam.search.base import Hit, SearchBackend, SearchDoc, SearchPage, SearchQuery

# Private-use characters mark highlights so the text can be HTML-escaped before <mark> is put in.
_SEL, _ENDSEL = "\ue000", "\ue001"
_HEADLINE_OPTS = f"StartSel={_SEL}, StopSel={_ENDSEL}, MaxFragments=2, MaxWords=20, MinWords=5"
_TEXT_FIELDS = ("title", "description", "tags", "captions", "ocr_text")
TS_CONFIG = "english"

_UPSERT = text(f"""
INSERT INTO search_docs (asset_id, owner_id, visibility, kind, mime, title, description, tags, captions, ocr_text,
    objects, faces, nsfw, disturbing, meme, annotation_types, labels, project_ids, uploaded_at, embedding,
    embedding_model, tsv)
VALUES (:asset_id, :owner_id, :visibility, :kind, :mime, :title, :description, :tags, :captions, :ocr_text,
    :objects, :faces, :nsfw, :disturbing, :meme, :annotation_types, :labels, :project_ids, :uploaded_at,
    CAST(:embedding AS vector), :embedding_model,
    setweight(to_tsvector('{TS_CONFIG}', :title), 'A')
    || setweight(to_tsvector('{TS_CONFIG}', array_to_string(CAST(:tags AS text[]), ' ')), 'A')
    || setweight(to_tsvector('{TS_CONFIG}', :description), 'B')
    || setweight(to_tsvector('{TS_CONFIG}', :captions), 'B')
    || setweight(to_tsvector('{TS_CONFIG}', :ocr_text), 'C'))
ON CONFLICT (asset_id) DO UPDATE SET owner_id = EXCLUDED.owner_id, visibility = EXCLUDED.visibility,
    kind = EXCLUDED.kind, mime = EXCLUDED.mime, title = EXCLUDED.title, description = EXCLUDED.description,
    tags = EXCLUDED.tags, captions = EXCLUDED.captions, ocr_text = EXCLUDED.ocr_text, objects = EXCLUDED.objects,
    faces = EXCLUDED.faces, nsfw = EXCLUDED.nsfw, disturbing = EXCLUDED.disturbing, meme = EXCLUDED.meme,
    annotation_types = EXCLUDED.annotation_types, labels = EXCLUDED.labels, project_ids = EXCLUDED.project_ids,
    uploaded_at = EXCLUDED.uploaded_at, embedding = EXCLUDED.embedding,
    embedding_model = EXCLUDED.embedding_model, tsv = EXCLUDED.tsv
""")


def vector_literal(values: list[float]) -> str:
    return "[" + ",".join(repr(float(v)) for v in values) + "]"


def _tri(column: str, mode: str) -> str | None:
    if mode == "exclude":
        return f"{column} IS NOT TRUE"
    if mode == "only":
        return f"{column} IS TRUE"
    return None


def where_clause(query: SearchQuery) -> tuple[str, dict[str, Any]]:
    """WHERE text (columns only, never values) and its bound parameters."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if not query.is_admin:
        parts.append("(visibility = 'public' OR owner_id = :viewer)")
        params["viewer"] = query.viewer_id
    if query.q:
        parts.append(f"tsv @@ websearch_to_tsquery('{TS_CONFIG}', :q)")
        params["q"] = query.q
    if query.kinds:
        parts.append("kind = ANY(:kinds)")
        params["kinds"] = query.kinds
    if query.objects:
        parts.append("objects @> CAST(:objects AS text[])")
        params["objects"] = query.objects
    if query.labels:
        parts.append("labels @> CAST(:labels AS text[])")
        params["labels"] = query.labels
    if query.faces is not None:
        parts.append("faces > 0" if query.faces else "faces = 0")
    for column, mode in (("nsfw", query.nsfw), ("disturbing", query.disturbing), ("meme", query.meme)):
        clause = _tri(column, mode)
        if clause:
            parts.append(clause)
    if query.uploaded_from:
        parts.append("uploaded_at >= :uploaded_from")
        params["uploaded_from"] = query.uploaded_from
    if query.uploaded_to:
        parts.append("uploaded_at < :uploaded_to")
        params["uploaded_to"] = query.uploaded_to
    if query.owner_id is not None:
        parts.append("owner_id = :owner")
        params["owner"] = query.owner_id
    if query.project_id is not None:
        parts.append("project_ids @> ARRAY[CAST(:project AS bigint)]")
        params["project"] = query.project_id
    if query.asset_ids is not None:
        parts.append("asset_id = ANY(:asset_ids)")
        params["asset_ids"] = query.asset_ids
    if query.exclude_ids:
        parts.append("NOT (asset_id = ANY(:exclude_ids))")
        params["exclude_ids"] = query.exclude_ids
    if query.vector is not None:
        parts.append("embedding IS NOT NULL")
        if query.vector_model is not None:
            parts.append("embedding_model = :vector_model")
            params["vector_model"] = query.vector_model
        if query.min_score is not None:
            parts.append("(embedding <=> CAST(:vec AS vector)) <= 1 - :min_score")
            params["min_score"] = query.min_score
    return (" AND ".join(parts) or "TRUE"), params


def _mark(fragment: str) -> str:
    return html.escape(fragment).replace(_SEL, "<mark>").replace(_ENDSEL, "</mark>")


class PostgresSearch(SearchBackend):
    name = "postgres"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ef_search: int = 100) -> None:
        self._sessions = sessions
        self._ef_search = ef_search

    async def upsert(self, doc: SearchDoc) -> None:
        async with self._sessions.begin() as session:
            await upsert_doc(session, doc)

    async def delete(self, asset_id: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(text("DELETE FROM search_docs WHERE asset_id = :id"), {"id": asset_id})

    async def reset(self) -> None:
        async with self._sessions.begin() as session:
            await session.execute(text("TRUNCATE search_docs"))

    async def search(self, query: SearchQuery) -> SearchPage:
        where, params = where_clause(query)
        params |= {"limit": query.size, "offset": (query.page - 1) * query.size}
        async with self._sessions.begin() as session:
            if query.vector is not None:
                params["vec"] = vector_literal(query.vector)
                # Iterative scans keep returning candidates until the filters are satisfied (pgvector 0.8);
                # relaxed order is re-sorted by the outer query.
                await session.execute(text(f"SET LOCAL hnsw.ef_search = {int(self._ef_search)}"))
                await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
                sql = f"""
                WITH nn AS MATERIALIZED (
                    SELECT asset_id, embedding <=> CAST(:vec AS vector) AS distance FROM search_docs
                    WHERE {where} ORDER BY distance LIMIT :limit + :offset)
                SELECT asset_id, 1 - distance AS score FROM nn ORDER BY distance, asset_id OFFSET :offset"""
            elif query.q:
                sql = f"""SELECT asset_id, ts_rank_cd(tsv, websearch_to_tsquery('{TS_CONFIG}', :q)) AS score
                FROM search_docs WHERE {where} ORDER BY score DESC, asset_id DESC LIMIT :limit OFFSET :offset"""
            else:
                sql = f"""SELECT asset_id, NULL AS score FROM search_docs WHERE {where}
                ORDER BY uploaded_at DESC, asset_id DESC LIMIT :limit OFFSET :offset"""
            rows = (await session.execute(text(sql), params)).all()
            hits = [Hit(asset_id=r[0], score=None if r[1] is None else float(r[1])) for r in rows]
            count_params = {k: v for k, v in params.items() if k not in ("limit", "offset")}
            total = (await session.execute(text(f"SELECT count(*) FROM search_docs WHERE {where}"), count_params))
            total_count = int(total.scalar_one())
            if query.q and query.highlight and hits:
                await self._highlight(session, hits, query.q)
            facets = await self._facets(session, where, count_params) if query.facets else {}
        return SearchPage(total=total_count, hits=hits, facets=facets)

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

    async def _facets(self, session: AsyncSession, where: str, params: dict[str, Any]) -> dict[str, dict[str, int]]:
        sql = f"""
        WITH f AS MATERIALIZED (SELECT kind, objects, nsfw, meme, uploaded_at, annotation_types
                                FROM search_docs WHERE {where})
        SELECT 'kind', kind, count(*) FROM f GROUP BY kind
        UNION ALL SELECT 'objects', o, count(*) FROM f, unnest(objects) o GROUP BY o
        UNION ALL SELECT 'nsfw', coalesce(nsfw::text, 'unknown'), count(*) FROM f GROUP BY 2
        UNION ALL SELECT 'meme', coalesce(meme::text, 'unknown'), count(*) FROM f GROUP BY 2
        UNION ALL SELECT 'month', to_char(uploaded_at AT TIME ZONE 'UTC', 'YYYY-MM'), count(*) FROM f GROUP BY 2
        UNION ALL SELECT 'annotation_types', t, count(*) FROM f, unnest(annotation_types) t GROUP BY t"""
        facets: dict[str, dict[str, int]] = {name: {} for name in ("kind", "objects", "nsfw", "meme", "month",
                                                                    "annotation_types")}
        for facet, key, count in (await session.execute(text(sql), params)).all():
            facets[facet][str(key)] = int(count)
        facets["objects"] = dict(sorted(facets["objects"].items(), key=lambda kv: (-kv[1], kv[0]))[:50])
        return facets


async def upsert_doc(session: AsyncSession, doc: SearchDoc) -> None:
    values = dict(doc.__dict__)
    values["embedding"] = vector_literal(doc.embedding) if doc.embedding is not None else None
    await session.execute(_UPSERT, values)
