"""The recognition gallery: a user's named persons and other users' public ones, never a private person of
another user, and a public person's vector only from its faces on public assets. Real PostgreSQL (pgvector),
the real migrations, export and centroid code."""

from __future__ import annotations

import io

import numpy as np
from sqlalchemy import text

from services.dam.core.config import DamOptions, DamSettings
from services.dam.core.db import Database, run_migrations
from services.dam.people.clustering import normalise
from services.dam.people.gallery import export_gallery
from services.dam.people.store import _vector_literal, refresh_centroids
from services.dam.spaces import register
from tests.dam.conftest import fresh_database

DIM = 8
ALICE, BOB = 1, 2


def _unit(seed: int) -> np.ndarray:
    return normalise(np.random.default_rng(seed).normal(size=(1, DIM)))[0]


def _read(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {str(n): v for n, v in zip(npz["names"], npz["vectors"], strict=True)}


async def test_the_gallery_holds_my_persons_and_others_public_ones_only(pg_server_uri):
    url = fresh_database(pg_server_uri)
    run_migrations(url)
    db = Database(url, DamSettings(dam=DamOptions(database_url=url)))
    vectors: dict[int, np.ndarray] = {}  # face id -> unit embedding
    try:
        async with db.sessions.begin() as session:
            await session.execute(text("INSERT INTO users (id, email, password_hash) VALUES "
                                       "(1, 'alice@x.org', 'x'), (2, 'bob@x.org', 'x')"))
            space = (await register(session, "faceres", DIM)).id
            other_space = (await register(session, "arcface_r50", DIM)).id

            async def asset(owner: int, visibility: str, deleted: bool = False) -> int:
                n = int((await session.execute(text("SELECT count(*) FROM assets"))).scalar_one())
                return int((await session.execute(text(
                    "INSERT INTO assets (owner_id, visibility, title, mime, kind, size, sha256, deleted_at) "
                    "VALUES (:o, :v, 't', 'image/jpeg', 'image', 1, :s, CASE WHEN :d THEN now() END) "
                    "RETURNING id"), {"o": owner, "v": visibility, "s": f"{n:064d}", "d": deleted})).scalar_one())

            async def person(owner: int, name: str | None, hidden: bool = False, space_id: int = space) -> int:
                return int((await session.execute(text(
                    "INSERT INTO persons (owner_id, space_id, name, hidden) VALUES (:o, :s, :n, :h) RETURNING id"),
                    {"o": owner, "s": space_id, "n": name, "h": hidden})).scalar_one())

            async def face(asset_id: int, person_id: int, seed: int, space_id: int = space) -> None:
                face_id = int((await session.execute(text(
                    "INSERT INTO faces (asset_id, source, box, score, quality, size_px, space_id, embedding, "
                    "person_id) VALUES (:a, 'det', '{0.1,0.1,0.5,0.5}', 0.9, 0.9, 100, :sp, "
                    "CAST(:e AS vector), :p) RETURNING id"),
                    {"a": asset_id, "sp": space_id, "e": _vector_literal(_unit(seed)), "p": person_id})).scalar_one())
                vectors[face_id] = _unit(seed)

            # Alice: a named person on one private and two public photos (one of them deleted) ...
            eileen = await person(ALICE, "Eileen Collins")
            await face(await asset(ALICE, "private"), eileen, 1)
            await face(await asset(ALICE, "public"), eileen, 2)
            await face(await asset(ALICE, "public", deleted=True), eileen, 3)
            # ... a named person on private photos only, a hidden one and an unnamed one on public photos, and
            # a named public one in another embedding space.
            secret = await person(ALICE, "Secret Friend")
            await face(await asset(ALICE, "private"), secret, 4)
            await face(await asset(ALICE, "private"), secret, 5)
            hidden = await person(ALICE, "Hidden Person", hidden=True)
            await face(await asset(ALICE, "public"), hidden, 6)
            unnamed = await person(ALICE, None)
            await face(await asset(ALICE, "public"), unnamed, 7)
            elsewhere = await person(ALICE, "Other Space", space_id=other_space)
            await face(await asset(ALICE, "public"), elsewhere, 8, other_space)
            # Bob: his own named person, on a private photo.
            bobs = await person(BOB, "Bob Himself")
            await face(await asset(BOB, "private"), bobs, 9)
            await refresh_centroids(session, [eileen, secret, hidden, unnamed, elsewhere, bobs])

        async with db.sessions() as session:
            for_bob = _read(await export_gallery(session, BOB, "faceres"))
            mine_only = _read(await export_gallery(session, BOB, "faceres", public=False))
            for_alice = _read(await export_gallery(session, ALICE, "faceres"))
            arcface = _read(await export_gallery(session, BOB, "arcface_r50"))

        # Bob gets his own person and alice's public one; never her private, hidden or unnamed persons.
        assert sorted(for_bob) == ["Bob Himself", "Eileen Collins"]
        assert sorted(mine_only) == ["Bob Himself"]
        # Her vector comes from the one face on a live public photo: not the centroid of all her faces.
        public_face = sorted(vectors)[1]
        assert np.allclose(for_bob["Eileen Collins"], vectors[public_face], atol=1e-5)
        all_faces = normalise(np.stack([vectors[f] for f in sorted(vectors)[:3]]).mean(axis=0, keepdims=True))[0]
        assert not np.allclose(for_bob["Eileen Collins"], all_faces, atol=1e-2)
        # Alice's own gallery is her named, shown persons with their stored centres; Bob's private one stays out.
        assert sorted(for_alice) == ["Eileen Collins", "Secret Friend"]
        assert np.allclose(for_alice["Eileen Collins"], all_faces, atol=1e-5)
        # One space per gallery: the other space's public person, and only it.
        assert sorted(arcface) == ["Other Space"]
    finally:
        await db.close()
