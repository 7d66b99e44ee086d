"""Storing an asset's detected faces (one face-recognition result) and placing new ones into persons.

A re-run of the same model updates the faces it finds again in place (same keyframe, boxes overlapping),
so what users said about them (person, pin, rejections) stays; faces no longer found go. New faces join
the nearest person of the asset's owner in their embedding space within the join threshold (never one
they were rejected from); when enough faces wait, a clustering pass over the waiting ones forms new
persons. One owner's placements are serialised by an advisory lock (concurrent workers, re-clusters)."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.people.clustering import NOISE, density_clusters, normalise
from services.dam.people.faces import DetectedFace, _iou
from services.dam.people.options import PeopleOptions
from services.dam.spaces import SpaceError, register

log = logging.getLogger(__name__)

PEOPLE_LOCK = 0x6D61_0016  # with the owner id: pg_advisory_xact_lock(int, int)
_SAME_FACE_IOU = 0.5


async def lock_owner(session: AsyncSession, owner_id: int) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k, :o)"), {"k": PEOPLE_LOCK, "o": owner_id % 2**31})


def as_array(value: Any) -> np.ndarray:
    """A vector column read through plain SQL (pgvector's text form "[1,2,...]") or the ORM (an array)."""
    if isinstance(value, str):
        return np.asarray(json.loads(value), np.float32)
    return np.asarray(value, np.float32)


def _vector_literal(values: np.ndarray) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in values.tolist()) + "]"


async def store_faces(session: AsyncSession, asset_id: int, source: str, faces: list[DetectedFace],
                      options: PeopleOptions | None = None) -> set[int]:
    """Replaces `source`'s faces of the asset; returns the assets whose persons changed (this one included
    when any of its faces is in a person)."""
    options = options or PeopleOptions.of()
    owner = (await session.execute(text("SELECT owner_id FROM assets WHERE id = :a"), {"a": asset_id})).scalar()
    if owner is None:
        return set()
    await lock_owner(session, int(owner))
    old = (await session.execute(text(
        "SELECT id, box, frame_index FROM faces WHERE asset_id = :a AND source = :s"),
        {"a": asset_id, "s": source})).all()
    unmatched = {int(r.id): r for r in old}
    fresh: list[int] = []
    for face in faces:
        space_id, unit = None, None
        if face.embedding:
            try:
                space_id = (await register(session, face.embedding_model, len(face.embedding))).id
                unit = normalise([face.embedding])[0]
            except SpaceError as exc:
                log.warning("asset %d: face embedding of %s: %s; stored without it", asset_id, source, exc)
        same = max((r for r in unmatched.values() if r.frame_index == face.frame_index),
                   key=lambda r: _iou(list(r.box), face.box), default=None)
        params: dict[str, Any] = {
            "box": face.box, "fi": face.frame_index, "ts": face.timestamp, "tr": face.track, "sc": face.score,
            "q": face.quality, "px": face.size_px, "at": json.dumps(face.attributes), "sp": space_id,
            "e": _vector_literal(unit) if unit is not None else None}
        if same is not None and _iou(list(same.box), face.box) >= _SAME_FACE_IOU:
            del unmatched[int(same.id)]
            await session.execute(text("""
                UPDATE faces SET box = :box, frame_index = :fi, timestamp = :ts, track = :tr, score = :sc,
                    quality = :q, size_px = :px, attributes = CAST(:at AS jsonb),
                    embedding = CAST(:e AS vector),
                    person_id = CASE WHEN space_id IS NOT DISTINCT FROM :sp THEN person_id END,
                    pinned = pinned AND space_id IS NOT DISTINCT FROM :sp, space_id = :sp
                WHERE id = :id"""), {**params, "id": int(same.id)})
        else:
            face_id = (await session.execute(text("""
                INSERT INTO faces (asset_id, source, box, frame_index, timestamp, track, score, quality, size_px,
                                   attributes, space_id, embedding)
                VALUES (:a, :s, :box, :fi, :ts, :tr, :sc, :q, :px, CAST(:at AS jsonb), :sp, CAST(:e AS vector))
                RETURNING id"""), {**params, "a": asset_id, "s": source})).scalar_one()
            if unit is not None and options.eligible(face.quality, face.size_px):
                fresh.append(int(face_id))
    if unmatched:
        await session.execute(text("DELETE FROM faces WHERE id = ANY(:ids)"), {"ids": sorted(unmatched)})
    changed = await place(session, int(owner), fresh, options)
    in_person = (await session.execute(text(
        "SELECT 1 FROM faces WHERE asset_id = :a AND person_id IS NOT NULL LIMIT 1"), {"a": asset_id})).first()
    if in_person is not None or old:
        changed.add(asset_id)
    return changed


_NEAREST = text("""
SELECT p.id, 1 - (p.centroid <=> f.embedding) AS similarity
FROM faces f JOIN persons p ON p.owner_id = :o AND p.space_id = f.space_id AND p.centroid IS NOT NULL
WHERE f.id = :f AND NOT EXISTS (SELECT 1 FROM face_rejections r WHERE r.face_id = f.id AND r.person_id = p.id)
ORDER BY p.centroid <=> f.embedding LIMIT 1
""")


async def refresh_centroids(session: AsyncSession, person_ids: list[int] | set[int]) -> None:
    """Each person's centroid: the mean of its faces' unit embeddings (null when it has none)."""
    if person_ids:
        await session.execute(text("""
            UPDATE persons p SET centroid = (SELECT avg(f.embedding) FROM faces f WHERE f.person_id = p.id),
                updated_at = now()
            WHERE p.id = ANY(:ids)"""), {"ids": sorted(person_ids)})


async def place(session: AsyncSession, owner_id: int, face_ids: list[int], options: PeopleOptions) -> set[int]:
    """New faces join their nearest person, then waiting faces are clustered (the owner's lock is held).
    Returns the assets whose persons changed."""
    joined: set[int] = set()
    unplaced: list[int] = []
    for face_id in face_ids:
        row = (await session.execute(_NEAREST, {"o": owner_id, "f": face_id})).first()
        if row is not None and row.similarity >= options.join_similarity:
            await session.execute(text("UPDATE faces SET person_id = :p WHERE id = :f"),
                                  {"p": row.id, "f": face_id})
            await refresh_centroids(session, [int(row.id)])  # the next new face sees the moved centre
            joined.add(int(row.id))
        else:
            unplaced.append(face_id)
    changed = await cluster_waiting(session, owner_id, options, around=unplaced)
    if joined:
        changed |= {int(r[0]) for r in (await session.execute(text(
            "SELECT DISTINCT asset_id FROM faces WHERE id = ANY(:f) AND person_id IS NOT NULL"),
            {"f": face_ids})).all()}
    return changed


_WAITING = """
SELECT f.id, f.space_id, f.asset_id, f.embedding FROM faces f JOIN assets a ON a.id = f.asset_id
WHERE a.owner_id = :o AND f.person_id IS NULL AND f.embedding IS NOT NULL AND NOT f.pinned
  AND f.quality >= :q AND (f.size_px <= 0 OR f.size_px >= :px) AND a.deleted_at IS NULL {near}
ORDER BY f.id
"""
# The waiting faces neighbouring the new ones (cosine >= the clustering threshold), the new ones included.
_NEAR = """AND f.id IN (SELECT w.id FROM faces w JOIN faces s ON s.id = ANY(:around) AND s.space_id = w.space_id
                     WHERE w.person_id IS NULL AND (w.id = s.id OR 1 - (w.embedding <=> s.embedding) >= :sim))"""


async def cluster_waiting(session: AsyncSession, owner_id: int, options: PeopleOptions,
                          around: list[int] | None = None) -> set[int]:
    """The clustering pass over an owner's waiting (eligible, unplaced) faces, space by space: each dense
    group becomes a new person. With `around` (faces that just arrived and joined nobody), only their
    neighbourhood is clustered, so an arrival costs a scan of the waiting faces, not a clustering of them
    all (chains reaching further wait for the full re-cluster). Returns the assets of the faces placed."""
    params: dict[str, Any] = {"o": owner_id, "q": options.min_quality, "px": options.min_face_px}
    if around is not None:
        if not around:
            return set()
        params.update(around=around, sim=options.cluster_similarity)
    sql = _WAITING.format(near=_NEAR if around is not None else "")
    rows = (await session.execute(text(sql), params)).all()
    by_space: dict[int, list[Any]] = {}
    for row in rows:
        by_space.setdefault(int(row.space_id), []).append(row)
    changed: set[int] = set()
    for space_id, members in by_space.items():
        if len(members) < options.min_faces:
            continue
        vectors = np.stack([as_array(m.embedding) for m in members])
        labels = density_clusters(vectors, options.cluster_similarity, options.min_faces)
        for label in sorted(set(labels.tolist()) - {NOISE}):
            ids = [int(members[i].id) for i in np.flatnonzero(labels == label)]
            person = (await session.execute(text(
                "INSERT INTO persons (owner_id, space_id) VALUES (:o, :s) RETURNING id"),
                {"o": owner_id, "s": space_id})).scalar_one()
            await session.execute(text("UPDATE faces SET person_id = :p WHERE id = ANY(:ids)"),
                                  {"p": person, "ids": ids})
            await refresh_centroids(session, [int(person)])
            changed |= {int(members[i].asset_id) for i in np.flatnonzero(labels == label)}
    return changed
