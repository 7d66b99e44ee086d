"""Alembic environment: the DAM runs migrations itself at startup on the connection it passes in."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from services.dam.core.config import get_dam_settings
from services.dam.core.db import database_url


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, version_table="dam_alembic_version")
        with context.begin_transaction():
            context.run_migrations()
        return
    # `alembic -c ...` from the command line: connect with the DAM settings.
    settings = get_dam_settings()
    engine = sa.create_engine(database_url(settings), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        context.configure(connection=conn, version_table="dam_alembic_version")
        with context.begin_transaction():
            context.run_migrations()


run()
