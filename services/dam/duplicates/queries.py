"""Reading near-duplicates as a user may see them: an asset's matches, the library's groups, the sync state.
A pair is shown only when the user may see both assets (their own, or public; an admin: all), neither is
deleted, and the user has not dismissed it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.models import User

ASSET_FIELDS = ("id", "owner_id", "visibility", "title", "filename", "kind", "mime", "width", "height", "duration",
                "size", "created_at")
_VISIBLE = "({t}.deleted_at IS NULL AND (:admin OR {t}.owner_id = :user OR {t}.visibility = 'public'))"
_PAIRS = f"""
SELECT m.asset_a, m.asset_b, m.score, m.segments FROM ndd_matches m
JOIN assets a ON a.id = m.asset_a JOIN assets b ON b.id = m.asset_b
WHERE {_VISIBLE.format(t='a')} AND {_VISIBLE.format(t='b')}
  AND NOT EXISTS (SELECT 1 FROM ndd_dismissals d WHERE d.user_id = :user AND d.asset_a = m.asset_a
                  AND d.asset_b = m.asset_b)
"""
ASSET_PAIRS = text(_PAIRS + " AND (m.asset_a = :id OR m.asset_b = :id) ORDER BY m.score DESC LIMIT 100")
# The review covers pairs with at least one of the user's own assets (what they can act on).
LIBRARY_PAIRS = text(_PAIRS + " AND (a.owner_id = :user OR b.owner_id = :user) ORDER BY m.score DESC LIMIT :cap")
STATE = text("SELECT state, last_error FROM ndd_entries WHERE asset_id = :id")
COUNTS = text("""
SELECT e.state, count(*) FROM ndd_entries e JOIN assets a ON a.id = e.asset_id
WHERE a.owner_id = :user AND a.deleted_at IS NULL GROUP BY e.state
""")
WAITING = text("""
SELECT count(*) FROM assets a WHERE a.owner_id = :user AND a.deleted_at IS NULL AND a.kind IN ('image', 'video')
  AND NOT EXISTS (SELECT 1 FROM ndd_entries e WHERE e.asset_id = a.id)
""")
# Pairs read for the review at most: groups beyond them show once the first ones are resolved.
PAIR_CAP = 20_000


def _who(user: User) -> dict[str, Any]:
    return {"user": user.id, "admin": user.is_admin}


async def assets_by_id(session: AsyncSession, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = (await session.execute(text(f"SELECT {', '.join(ASSET_FIELDS)} FROM assets WHERE id = ANY(:ids)"),
                                  {"ids": sorted(ids)})).mappings().all()
    return {row["id"]: dict(row) for row in rows}


async def asset_state(session: AsyncSession, asset_id: int) -> tuple[str, str | None]:
    """queued | indexed | failed | removing, or `waiting` before the asset's annotation has finished."""
    row = (await session.execute(STATE, {"id": asset_id})).first()
    return (row[0], row[1]) if row else ("waiting", None)


async def asset_matches(session: AsyncSession, asset_id: int, user: User) -> list[dict[str, Any]]:
    pairs = (await session.execute(ASSET_PAIRS, _who(user) | {"id": asset_id})).all()
    others = await assets_by_id(session, {b if a == asset_id else a for a, b, _, _ in pairs})
    out = []
    for a, b, score, segments in pairs:
        other = b if a == asset_id else a
        mine_first = a == asset_id  # segments are stored as a/b: give them as this asset's and the other's
        out.append({"asset": others[other] | {"mine": others[other]["owner_id"] == user.id}, "score": score,
                    "segments": [_oriented(s, mine_first) for s in segments] if segments else None})
    return out


def _oriented(segment: dict[str, float], a_is_this: bool) -> dict[str, float]:
    this, other = ("a", "b") if a_is_this else ("b", "a")
    return {"start": segment[f"{this}_start"], "end": segment[f"{this}_end"],
            "other_start": segment[f"{other}_start"], "other_end": segment[f"{other}_end"]}


def group_pairs(pairs: list[tuple[int, int, float]]) -> list[list[int]]:
    """Connected components of the pairs (union-find), each sorted, largest best-scored group first."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(root(x), []).append(x)
    return [sorted(g) for g in groups.values()]


async def library_groups(session: AsyncSession, user: User, offset: int, limit: int) -> dict[str, Any]:
    pairs = (await session.execute(LIBRARY_PAIRS, _who(user) | {"cap": PAIR_CAP})).all()
    groups = group_pairs([(a, b, s) for a, b, s, _ in pairs])
    best: dict[int, float] = {}
    member: dict[int, int] = {x: i for i, g in enumerate(groups) for x in g}
    for a, _, score, _ in pairs:
        best[member[a]] = max(best.get(member[a], 0.0), score)
    order = sorted(range(len(groups)), key=lambda i: (-best[i], groups[i][0]))
    page = [groups[i] for i in order[offset:offset + limit]]
    assets = await assets_by_id(session, {x for g in page for x in g})
    out = []
    for group in page:
        members = set(group)
        out.append({
            "assets": [assets[x] | {"mine": assets[x]["owner_id"] == user.id} for x in group],
            "pairs": [{"a": a, "b": b, "score": s, "segments": seg} for a, b, s, seg in pairs
                      if a in members and b in members],
            "best_score": best[member[group[0]]],
        })
    return {"total": len(groups), "offset": offset, "groups": out}


async def sync_counts(session: AsyncSession, user: User) -> dict[str, int]:
    counts = dict.fromkeys(("waiting", "queued", "indexed", "failed", "removing"), 0)
    for state, count in (await session.execute(COUNTS, {"user": user.id})).all():
        counts[state] = int(count)
    counts["waiting"] = int((await session.execute(WAITING, {"user": user.id})).scalar_one())
    return counts
