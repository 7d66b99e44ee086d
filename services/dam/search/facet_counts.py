"""Facets of a browse read from the counts PostgreSQL keeps as documents change (migration 0008), not by
scanning every visible document.

A browse is a search with no words and no filter but types and owner: the library's front page, "my assets", a
type tab, and a kNN ("similar to") with no other filter, whose matches are the browsed documents with a vector
in its space (counted in that space). Its total is the sum of its `kind` counts, so a browse counts nothing
either. Every other search is narrower: its facets and total come from the scan of its matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.search.base import SearchQuery

# Fold the rows of a read's scope once the rows appended since its last fold outnumber the folded ones (plus
# some slack for a small library): a read scans at most about twice the fully folded rows, whatever the write
# history, and a fully folded scope (one row per owner, kind and key) is not folded again.
_FOLD_SLACK = 500
_FOLD_LOCK = 0x6D61616D_0002
# Documents left out of a browse ("similar to" leaves out its asset, a project's recommendations its members)
# are taken off the kept counts one by one, up to this many; more are the scan's.
MAX_EXCLUDED = 1000


def serves(query: SearchQuery) -> bool:
    """Whether the kept counts are this query's facets and total exactly."""
    return (not query.q and query.min_score is None and not query.objects and not query.labels
            and query.faces is None and query.nsfw == query.disturbing == query.meme == "include"
            and query.uploaded_from is None and query.uploaded_to is None and query.project_id is None
            and query.asset_ids is None and len(query.exclude_ids) <= MAX_EXCLUDED and not query.annotations
            and query.has_text is None)


def _scope(query: SearchQuery, space_id: int, docs: bool = False) -> tuple[str, dict[str, Any]]:
    """The browse's WHERE over the kept counts, or (`docs`) over `search_docs d` itself."""
    if docs:
        parts = ["(:space = 0 OR :space = ANY(d.space_ids))"]
        public, owner, kind = "d.visibility = 'public'", "d.owner_id", "d.kind"
    else:
        parts, public, owner, kind = ["space_id = :space"], "public", "owner_id", "kind"
    params: dict[str, Any] = {"space": space_id}
    if not query.is_admin:
        parts.append(f"({public} OR {owner} = :viewer)")
        params["viewer"] = query.viewer_id
    if query.owner_id is not None:
        parts.append(f"{owner} = :owner")
        params["owner"] = query.owner_id
    if query.kinds:
        parts.append(f"{kind} = ANY(:kinds)")
        params["kinds"] = query.kinds
    return " AND ".join(parts), params


@dataclass(frozen=True)
class Kept:
    counts: list[tuple[str, str, int]]  # (facet, key, count)
    spread: bool  # the scope's rows should be folded (`fold_scope`)


async def read(session: AsyncSession, query: SearchQuery, space_id: int = 0) -> Kept:
    """The (facet, key, count) of the documents `query` browses (each counts once under `kind`), of those with a
    vector in `space_id` if not 0, and whether the rows read are spread enough to fold. Reads only: the fold is
    the caller's, in a transaction of its own, so a read can run in a request's read-only session."""
    where, params = _scope(query, space_id)
    rows = (await session.execute(text(
        f"SELECT facet, key, sum(n), count(*) FILTER (WHERE folded), count(*) FILTER (WHERE NOT folded) "
        f"FROM search_facet_deltas WHERE {where} GROUP BY facet, key"), params)).all()
    spread = sum(r[4] for r in rows) > sum(r[3] for r in rows) + _FOLD_SLACK
    counts = {(r[0], r[1]): int(r[2]) for r in rows}
    if query.exclude_ids:
        for facet, key, n in await _excluded(session, query, space_id):
            counts[facet, key] = counts.get((facet, key), 0) - n
    return Kept([(facet, key, n) for (facet, key), n in counts.items() if n > 0], spread)


async def fold_scope(session: AsyncSession, query: SearchQuery, space_id: int = 0) -> None:
    """Folds the rows `read(query, space_id)` reads."""
    await fold(session, *_scope(query, space_id))


async def _excluded(session: AsyncSession, query: SearchQuery, space_id: int) -> list[tuple[str, str, int]]:
    """The facet keys of the excluded documents that the browse would count."""
    where, params = _scope(query, space_id, docs=True)
    return [(r[0], r[1], int(r[2])) for r in (await session.execute(text(f"""
        SELECT k.facet, k.key, count(*) FROM search_docs d, maam_facet_keys(
            d.kind, d.nsfw, d.meme, d.uploaded_at, d.objects, d.annotation_types, d.labels) k
        WHERE d.asset_id = ANY(:excluded) AND {where} GROUP BY 1, 2"""),
        {**params, "excluded": list(query.exclude_ids)})).all()]


async def fold(session: AsyncSession, where: str = "TRUE", params: dict[str, Any] | None = None) -> None:
    """Replaces the rows under `where` by one row per key with their sum. Rows appended meanwhile by other
    transactions are not in this one's snapshot and stay as they are; one fold runs at a time."""
    if not (await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _FOLD_LOCK})).scalar_one():
        return
    await session.execute(text(f"""
        WITH gone AS (DELETE FROM search_facet_deltas WHERE {where} RETURNING *)
        INSERT INTO search_facet_deltas
        SELECT space_id, owner_id, public, kind, facet, key, sum(n), true FROM gone GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(n) <> 0"""),
        params or {})
