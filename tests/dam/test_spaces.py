"""The space registry: a space committed once is served from memory (storing vectors costs no registry round
trips), a space inserted by a transaction that rolls back is never served, and a size change is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from services.dam.core.config import DamOptions, DamSettings
from services.dam.core.db import Database, run_migrations
from services.dam.spaces import SpaceError, register
from tests.dam.conftest import fresh_database


@pytest.fixture
async def db(pg_server_uri: str):
    url = fresh_database(pg_server_uri)
    run_migrations(url)
    database = Database(url, DamSettings(dam=DamOptions(database_url=url)))
    yield database
    await database.close()


async def test_committed_spaces_cost_no_round_trips_and_rolled_back_ones_are_not_kept(db: Database) -> None:
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    # Inserted, then rolled back: the next transaction must not be handed its id.
    async with db.sessions() as session, session.begin():
        rolled_back = await register(session, "clip", 4)
        await session.rollback()
    async with db.sessions.begin() as session:
        clip = await register(session, "clip", 4)
    async with db.sessions() as session:
        assert (await session.execute(text("SELECT id FROM embedding_spaces WHERE name = 'clip'"))).scalar_one() \
            == clip.id
    assert clip.id != rolled_back.id
    async with db.sessions.begin() as session:  # committed now: read once, then from memory
        assert await register(session, "clip", 4) == clip
    statements.clear()
    async with db.sessions.begin() as session:
        for _ in range(5):
            assert await register(session, "clip", 4) == clip
        with pytest.raises(SpaceError, match="holds 4-d vectors"):
            await register(session, "clip", 8)
    assert not [s for s in statements if "embedding_spaces" in s]
