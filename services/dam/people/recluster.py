"""The full re-clustering of one owner's faces (`maam dam people recluster`, POST /api/people/recluster):
every eligible face of each embedding space clustered afresh, keeping names, pins, merges and rejections
(clustering.plan_recluster)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.people.clustering import FaceRow, plan_recluster
from services.dam.people.options import PeopleOptions
from services.dam.people.store import as_array, lock_owner, refresh_centroids

_FACES = text("""
SELECT f.id, f.asset_id, f.space_id, f.embedding, f.person_id, f.pinned,
       ARRAY(SELECT r.person_id FROM face_rejections r WHERE r.face_id = f.id) AS rejected
FROM faces f JOIN assets a ON a.id = f.asset_id
WHERE a.owner_id = :o AND a.deleted_at IS NULL AND f.embedding IS NOT NULL
  AND (f.pinned OR (f.quality >= :q AND (f.size_px <= 0 OR f.size_px >= :px)))
ORDER BY f.id
""")


@dataclass
class ReclusterReport:
    owner_id: int
    faces: int
    persons: int
    new_persons: int
    removed_persons: int
    changed_assets: set[int]


async def recluster_owner(session: AsyncSession, owner_id: int, options: PeopleOptions | None = None
                          ) -> ReclusterReport:
    options = options or PeopleOptions.of()
    await lock_owner(session, owner_id)
    rows = (await session.execute(_FACES, {"o": owner_id, "q": options.min_quality,
                                           "px": options.min_face_px})).all()
    named = {int(r[0]) for r in (await session.execute(text(
        "SELECT id FROM persons WHERE owner_id = :o AND name IS NOT NULL"), {"o": owner_id})).all()}
    before = {int(r.id): r for r in rows}
    changed: set[int] = set()
    new_total = 0
    by_space: dict[int, list] = {}
    for row in rows:
        by_space.setdefault(int(row.space_id), []).append(row)
    touched: set[int] = set()
    for space_id, members in by_space.items():
        faces = [FaceRow(int(r.id), as_array(r.embedding),
                         int(r.person_id) if r.person_id is not None else None, bool(r.pinned),
                         frozenset(int(p) for p in r.rejected)) for r in members]
        plan = plan_recluster(faces, named, options.cluster_similarity, options.min_faces,
                              options.join_similarity)
        created = [int((await session.execute(text(
            "INSERT INTO persons (owner_id, space_id) VALUES (:o, :s) RETURNING id"),
            {"o": owner_id, "s": space_id})).scalar_one()) for _ in range(plan.new_persons)]
        new_total += plan.new_persons
        moves: dict[int | None, list[int]] = {}
        for face_id, to in plan.assignment.items():
            person = created[to[1]] if isinstance(to, tuple) else to
            if person != before[face_id].person_id:
                moves.setdefault(person, []).append(face_id)
                changed.add(int(before[face_id].asset_id))
                touched |= {p for p in (person, before[face_id].person_id) if p is not None}
        for person, face_ids in moves.items():
            await session.execute(text("UPDATE faces SET person_id = :p WHERE id = ANY(:ids)"),
                                  {"p": person, "ids": face_ids})
    await refresh_centroids(session, touched)
    removed = (await session.execute(text("""
        DELETE FROM persons p WHERE p.owner_id = :o AND p.name IS NULL
          AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = p.id) RETURNING p.id"""),
        {"o": owner_id})).all()
    total = (await session.execute(text("SELECT count(*) FROM persons WHERE owner_id = :o"),
                                   {"o": owner_id})).scalar_one()
    return ReclusterReport(owner_id, len(rows), int(total), new_total, len(removed), changed)


async def owners_with_faces(session: AsyncSession) -> list[int]:
    return [int(r[0]) for r in (await session.execute(text(
        "SELECT DISTINCT a.owner_id FROM faces f JOIN assets a ON a.id = f.asset_id ORDER BY 1"))).all()]
