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


async def export_gallery(session: AsyncSession, owner_id: int, space: str) -> bytes:
    """The owner's named, shown persons of one embedding space (one vector each: its centroid)."""
    rows = (await session.execute(text("""
        SELECT p.name, p.centroid FROM persons p JOIN embedding_spaces s ON s.id = p.space_id
        WHERE p.owner_id = :o AND s.name = :s AND p.name IS NOT NULL AND NOT p.hidden AND p.centroid IS NOT NULL
        ORDER BY p.name, p.id"""), {"o": owner_id, "s": space})).all()
    names = np.asarray([r.name for r in rows], dtype=str)
    vectors = normalise(np.stack([as_array(r.centroid) for r in rows])) if rows else np.zeros((0, 0), np.float32)
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
