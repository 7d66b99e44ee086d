"""Named persons as a face gallery (.npz with `names` and L2-normalised `vectors`, the file the annotation
service's `MAAM_ANNOTATION__FACE_GALLERY` loads for ImageFaceRecognition/VideoFaceRecognition identities),
and the other way: a hand-made gallery imported as named persons whose centres new faces then join."""

from __future__ import annotations

import io

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.people.clustering import normalise
from services.dam.people.store import _vector_literal, as_array
from services.dam.spaces import register


class GalleryError(ValueError):
    pass


# Another user's person is public through its faces on public assets (services/dam/people/ops.py), so its
# gallery vector is the mean of those faces only: the stored centroid also averages the faces of private
# assets, and exporting it would let a viewer recover something of faces they may not see.
_GALLERY = text("""
    SELECT p.id, p.name, p.centroid AS vector FROM persons p JOIN embedding_spaces s ON s.id = p.space_id
    WHERE p.owner_id = :o AND s.name = :s AND p.name IS NOT NULL AND NOT p.hidden AND p.centroid IS NOT NULL
    UNION ALL
    SELECT p.id, p.name, avg(f.embedding) AS vector
    FROM persons p JOIN embedding_spaces s ON s.id = p.space_id
    JOIN faces f ON f.person_id = p.id AND f.space_id = p.space_id AND f.embedding IS NOT NULL
    JOIN assets a ON a.id = f.asset_id AND a.visibility = 'public' AND a.deleted_at IS NULL
    WHERE :public AND p.owner_id <> :o AND s.name = :s AND p.name IS NOT NULL AND NOT p.hidden
    GROUP BY p.id, p.name
    ORDER BY name, id""")


async def export_gallery(session: AsyncSession, owner_id: int, space: str, public: bool = True) -> bytes:
    """The owner's named, shown persons of one embedding space (one vector each: its centroid) and, unless
    `public` is false, other users' named, shown persons seen through their public assets (the mean of the
    faces on those assets only)."""
    rows = (await session.execute(_GALLERY, {"o": owner_id, "s": space, "public": public})).all()
    names = np.asarray([r.name for r in rows], dtype=str)
    vectors = normalise(np.stack([as_array(r.vector) for r in rows])) if rows else np.zeros((0, 0), np.float32)
    out = io.BytesIO()
    np.savez(out, names=names, vectors=vectors)
    return out.getvalue()


async def import_gallery(session: AsyncSession, owner_id: int, space: str, data: bytes) -> int:
    """Each (name, vector) becomes a named person of `space` (a person of that name there gets the vector
    as its centre when it has no faces yet). Returns the number of persons created."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            names = [str(n) for n in npz["names"]]
            vectors = np.asarray(npz["vectors"], np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise GalleryError(f"not a gallery .npz with `names` and `vectors`: {exc}") from exc
    if vectors.ndim != 2 or len(vectors) != len(names) or not names:
        raise GalleryError("a gallery needs one vector per name")
    if any(not n.strip() or len(n) > 200 or any(ord(c) < 32 for c in n) for n in names):
        raise GalleryError("gallery names must be 1-200 printable characters")
    space_id = (await register(session, space, int(vectors.shape[1]))).id
    created = 0
    for name, vector in zip(names, normalise(vectors), strict=True):
        existing = (await session.execute(text(
            "SELECT id FROM persons WHERE owner_id = :o AND space_id = :s AND name = :n"),
            {"o": owner_id, "s": space_id, "n": name.strip()})).scalar()
        if existing is None:
            await session.execute(text(
                "INSERT INTO persons (owner_id, space_id, name, centroid) VALUES (:o, :s, :n, CAST(:c AS vector))"),
                {"o": owner_id, "s": space_id, "n": name.strip(), "c": _vector_literal(vector)})
            created += 1
        else:
            await session.execute(text("""
                UPDATE persons SET centroid = CAST(:c AS vector) WHERE id = :id
                  AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = :id)"""),
                {"c": _vector_literal(vector), "id": existing})
    return created
