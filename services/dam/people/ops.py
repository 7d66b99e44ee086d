"""What users do with persons and faces, and what a viewer may see of them.

Visibility: a person belongs to the owner of its faces' assets. Its owner (and an admin) sees all of it;
another user sees a person only through its faces on public assets, and only those faces — another
user's private assets never reveal their faces or persons. Only the owner changes a person or a face."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.models import User
from services.dam.people.store import lock_owner, refresh_centroids


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class Conflict(ValueError):
    pass


def _face_visible(user: User) -> tuple[str, dict[str, Any]]:
    """SQL over `a` (the face's asset): the faces this user may see."""
    if user.is_admin:
        return "a.deleted_at IS NULL", {}
    return "a.deleted_at IS NULL AND (a.owner_id = :viewer OR a.visibility = 'public')", {"viewer": user.id}


@dataclass
class PersonRow:
    id: int
    owner_id: int
    space: str
    name: str | None
    hidden: bool
    face_count: int
    asset_count: int
    cover_face_id: int | None


_PERSON_SELECT = """
SELECT p.id, p.owner_id, s.name AS space, p.name, p.hidden,
       count(f.id) AS face_count, count(DISTINCT f.asset_id) AS asset_count,
       (array_agg(f.id ORDER BY f.quality DESC, f.id))[1] AS cover_face_id
FROM persons p JOIN embedding_spaces s ON s.id = p.space_id
LEFT JOIN faces f ON f.person_id = p.id AND f.asset_id IN (SELECT a.id FROM assets a WHERE {visible})
WHERE {where}
GROUP BY p.id, s.name
"""


async def list_persons(session: AsyncSession, user: User, mine: bool = True, named: bool | None = None,
                       hidden: bool = False, q: str | None = None, limit: int = 500) -> list[PersonRow]:
    visible, params = _face_visible(user)
    where = ["TRUE"]
    if mine:
        where.append("p.owner_id = :me")
        params["me"] = user.id
    if named is not None:
        where.append("p.name IS NOT NULL" if named else "p.name IS NULL")
    if not hidden:
        where.append("NOT p.hidden")
    if q:
        where.append("lower(p.name) LIKE :q")
        params["q"] = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = _PERSON_SELECT.format(visible=visible, where=" AND ".join(where))
    sql += " HAVING count(f.id) > 0 OR (p.owner_id = :me2 AND p.name IS NOT NULL)"
    sql += " ORDER BY p.name IS NULL, count(f.id) DESC, p.id LIMIT :limit"
    params.update(me2=user.id, limit=limit)
    return [PersonRow(**r._mapping) for r in (await session.execute(text(sql), params)).all()]


async def get_person(session: AsyncSession, user: User, person_id: int) -> PersonRow:
    """The person as this user may see it; NotFound when it is not theirs and has no face they may see."""
    visible, params = _face_visible(user)
    sql = _PERSON_SELECT.format(visible=visible, where="p.id = :id")
    row = (await session.execute(text(sql), {**params, "id": person_id})).first()
    if row is None:
        raise NotFound("person not found")
    person = PersonRow(**row._mapping)
    if not (user.is_admin or person.owner_id == user.id or person.face_count > 0):
        raise NotFound("person not found")
    return person


async def owned_person(session: AsyncSession, user: User, person_id: int) -> PersonRow:
    person = await get_person(session, user, person_id)
    if not (user.is_admin or person.owner_id == user.id):
        raise Forbidden("only the owner may change this person")
    return person


_FACE_SELECT = """
SELECT f.id, f.asset_id, f.box, f.frame_index, f.timestamp, f.track, f.score, f.quality, f.size_px,
       f.attributes, f.pinned, s.name AS space, a.owner_id,
       CASE WHEN p.hidden THEN NULL ELSE p.id END AS person_id,
       CASE WHEN p.hidden THEN NULL ELSE p.name END AS person_name
FROM faces f JOIN assets a ON a.id = f.asset_id
LEFT JOIN embedding_spaces s ON s.id = f.space_id LEFT JOIN persons p ON p.id = f.person_id
WHERE {visible} AND {where}
ORDER BY f.asset_id, f.frame_index NULLS FIRST, f.id
"""


async def faces(session: AsyncSession, user: User, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    visible, vparams = _face_visible(user)
    rows = await session.execute(text(_FACE_SELECT.format(visible=visible, where=where)), {**vparams, **params})
    return [dict(r._mapping) for r in rows.all()]


async def owned_face(session: AsyncSession, user: User, face_id: int) -> dict[str, Any]:
    found = await faces(session, user, "f.id = :id", {"id": face_id})
    if not found:
        raise NotFound("face not found")
    if not (user.is_admin or found[0]["owner_id"] == user.id):
        raise Forbidden("only the owner of the asset may change its faces")
    return found[0]


async def _assets_of(session: AsyncSession, person_ids: list[int]) -> set[int]:
    return {int(r[0]) for r in (await session.execute(text(
        "SELECT DISTINCT asset_id FROM faces WHERE person_id = ANY(:p)"), {"p": person_ids})).all()}


async def update_person(session: AsyncSession, person: PersonRow, name: str | None = None,
                        clear_name: bool = False, hidden: bool | None = None) -> set[int]:
    """Returns the assets whose search documents change."""
    sets, params = [], {"id": person.id}
    if clear_name:
        sets.append("name = NULL")
    elif name is not None:
        sets.append("name = :name")
        params["name"] = name
    if hidden is not None:
        sets.append("hidden = :hidden")
        params["hidden"] = hidden
    if sets:
        await session.execute(text(f"UPDATE persons SET {', '.join(sets)}, updated_at = now() WHERE id = :id"),
                              params)
    return await _assets_of(session, [person.id])


async def merge(session: AsyncSession, into: PersonRow, other: PersonRow) -> set[int]:
    """`other`'s faces become `into`'s (rejections of `other` too); `other` goes; `into` keeps its name,
    or takes `other`'s when it has none."""
    if into.id == other.id:
        raise Conflict("a person cannot be merged with itself")
    if into.owner_id != other.owner_id or into.space != other.space:
        raise Conflict("only persons of one owner and one embedding space can be merged")
    await lock_owner(session, into.owner_id)
    changed = await _assets_of(session, [into.id, other.id])
    await session.execute(text("UPDATE faces SET person_id = :a WHERE person_id = :b"), {"a": into.id, "b": other.id})
    await session.execute(text("""
        INSERT INTO face_rejections (face_id, person_id) SELECT face_id, :a FROM face_rejections
        WHERE person_id = :b ON CONFLICT DO NOTHING"""), {"a": into.id, "b": other.id})
    if into.name is None and other.name is not None:
        await session.execute(text("UPDATE persons SET name = :n WHERE id = :a"), {"n": other.name, "a": into.id})
    await session.execute(text("DELETE FROM persons WHERE id = :b"), {"b": other.id})
    await refresh_centroids(session, [into.id])
    return changed


async def move_face(session: AsyncSession, face: dict[str, Any], to: PersonRow | None, space_id: int | None
                    ) -> tuple[int, set[int]]:
    """The face goes to `to` (None: a new person of its own, a split) and stays there (pinned)."""
    if face["space"] is None or space_id is None:
        raise Conflict("this face has no face-descriptor embedding: it cannot belong to a person")
    if to is not None and (to.owner_id != face["owner_id"] or to.space != face["space"]):
        raise Conflict("a face can only move to a person of its asset's owner in its embedding space")
    await lock_owner(session, int(face["owner_id"]))
    old = (await session.execute(text("SELECT person_id FROM faces WHERE id = :f"), {"f": face["id"]})).scalar()
    target = to.id if to is not None else int((await session.execute(text(
        "INSERT INTO persons (owner_id, space_id) VALUES (:o, :s) RETURNING id"),
        {"o": face["owner_id"], "s": space_id})).scalar_one())
    await session.execute(text("DELETE FROM face_rejections WHERE face_id = :f AND person_id = :p"),
                          {"f": face["id"], "p": target})
    await session.execute(text("UPDATE faces SET person_id = :p, pinned = true WHERE id = :f"),
                          {"p": target, "f": face["id"]})
    await refresh_centroids(session, [p for p in (old, target) if p is not None])
    return target, {int(face["asset_id"])}


async def reject_face(session: AsyncSession, face: dict[str, Any]) -> set[int]:
    """"Not this person": the face leaves its person and never joins it again (re-clustering included)."""
    person = (await session.execute(text("SELECT person_id FROM faces WHERE id = :f"), {"f": face["id"]})).scalar()
    if person is None:
        raise Conflict("this face is in no person")
    await lock_owner(session, int(face["owner_id"]))
    await session.execute(text("INSERT INTO face_rejections (face_id, person_id) VALUES (:f, :p) "
                               "ON CONFLICT DO NOTHING"), {"f": face["id"], "p": person})
    await session.execute(text("UPDATE faces SET person_id = NULL, pinned = false WHERE id = :f"),
                          {"f": face["id"]})
    await refresh_centroids(session, [int(person)])
    return {int(face["asset_id"])}


async def space_id(session: AsyncSession, name: str | None) -> int | None:
    if name is None:
        return None
    return (await session.execute(text("SELECT id FROM embedding_spaces WHERE name = :n"), {"n": name})).scalar()


async def person_asset_ids(session: AsyncSession, user: User, person_id: int) -> list[int]:
    """The assets of the person that this user may see (a search filter)."""
    visible, params = _face_visible(user)
    rows = await session.execute(text(f"""
        SELECT DISTINCT f.asset_id FROM faces f JOIN assets a ON a.id = f.asset_id
        WHERE f.person_id = :p AND {visible} ORDER BY 1"""), {**params, "p": person_id})
    return [int(r[0]) for r in rows.all()]
