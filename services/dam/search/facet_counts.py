"""Facets of a browse read from the counts PostgreSQL keeps as documents change (migration 0008), not by
scanning every visible document.

A browse is a search with no words, no vector and no filter but types and owner: the library's front page,
"my assets", a type tab. Its total is the sum of its `kind` counts, so a browse counts nothing either. Every
other search is narrower: its facets and total come from the scan of its matches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.search.base import SearchQuery

# Fold an owner's rows together once a read finds more than this many rows per distinct key (plus some slack
# for a small library): reads stay a short index scan whatever the write history.
_FOLD_RATIO = 2
_FOLD_SLACK = 500
_FOLD_LOCK = 0x6D61616D_0002


def serves(query: SearchQuery) -> bool:
    """Whether the kept counts are this query's facets and total exactly."""
    return (not query.q and query.vector is None and not query.objects and not query.labels
            and query.faces is None and query.nsfw == query.disturbing == query.meme == "include"
            and query.uploaded_from is None and query.uploaded_to is None and query.project_id is None
            and query.asset_ids is None and not query.exclude_ids and not query.annotations
            and query.has_text is None)


def _scope(query: SearchQuery) -> tuple[str, dict[str, Any]]:
    parts, params = [], {}
    if not query.is_admin:
        parts.append("(public OR owner_id = :viewer)")
        params["viewer"] = query.viewer_id
    if query.owner_id is not None:
        parts.append("owner_id = :owner")
        params["owner"] = query.owner_id
    if query.kinds:
        parts.append("kind = ANY(:kinds)")
        params["kinds"] = query.kinds
    return " AND ".join(parts) or "TRUE", params


async def read(session: AsyncSession, query: SearchQuery) -> list[tuple[str, str, int]]:
    """(facet, key, count) of the documents `query` browses (each counts once under `kind`); folds the rows it
    read when they are spread."""
    where, params = _scope(query)
    rows = (await session.execute(text(
        f"SELECT facet, key, sum(n), count(*) FROM search_facet_deltas WHERE {where} GROUP BY facet, key"),
        params)).all()
    if sum(r[3] for r in rows) > _FOLD_RATIO * len(rows) + _FOLD_SLACK:
        await fold(session, where, params)
    return [(r[0], r[1], int(r[2])) for r in rows if r[2] > 0]


async def fold(session: AsyncSession, where: str = "TRUE", params: dict[str, Any] | None = None) -> None:
    """Replaces the rows under `where` by one row per key with their sum. Rows appended meanwhile by other
    transactions are not in this one's snapshot and stay as they are; one fold runs at a time."""
    if not (await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _FOLD_LOCK})).scalar_one():
        return
    await session.execute(text(f"""
        WITH gone AS (DELETE FROM search_facet_deltas WHERE {where} RETURNING *)
        INSERT INTO search_facet_deltas
        SELECT owner_id, public, kind, facet, key, sum(n) FROM gone GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0"""),
        params or {})
