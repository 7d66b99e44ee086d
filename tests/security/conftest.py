"""Security tests of the DAM reuse its fixtures: one embedded PostgreSQL per session, the real annotation
service, DAM processes on fresh databases over real HTTP."""

from __future__ import annotations

from tests.dam.conftest import annotation_server, dam, pg_server_uri  # noqa: F401 (pytest fixtures)
