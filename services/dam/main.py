"""`maam serve dam`: the DAM on uvicorn, stopped gracefully on SIGTERM; `MAAM_DAM__PROCESSES` > 1 runs that many
server processes on one port under uvicorn's supervisor (it restarts one that dies)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from services.common.shutdown import DEFAULT_GRACE_S, serve_http
from services.dam.core.config import DEFAULT_PORT

if TYPE_CHECKING:
    from fastapi import FastAPI

    from services.dam.annotation.claims import Node
    from services.dam.core.config import DamSettings

log = logging.getLogger(__name__)

_served: FastAPI | None = None  # the app this process serves


def _build(settings: DamSettings) -> FastAPI:
    from services.common.media import apply_media_settings
    from services.dam.app import create_app

    global _served
    apply_media_settings(settings.media)
    _served = create_app(settings)
    return _served


def stop_claiming() -> None:
    """The SIGTERM hook: annotation workers stop taking jobs now, while uvicorn drains open requests."""
    ctx = getattr(_served.state, "ctx", None) if _served is not None else None
    if ctx is not None:
        ctx.begin_shutdown()


def run(host: str, port: int = DEFAULT_PORT) -> None:
    from services.dam.core.config import get_dam_settings

    settings = get_dam_settings()
    if port != settings.dam.port:  # --port given: the DAM's own links (unless MAAM_DAM__URL) follow it
        settings = settings.model_copy(update={"dam": settings.dam.model_copy(update={"port": port})})
    if settings.dam.processes > 1:
        _run_processes(settings, host, port)
        return
    serve_http(_build(settings), host, port, on_signal=stop_claiming, proxy_headers=False)


def served_app() -> FastAPI:
    """uvicorn's app factory in each server process: the settings the supervisor left in the environment."""
    from services.common.logging import configure_logging
    from services.dam.core.config import get_dam_settings

    configure_logging("dam")
    app = _build(get_dam_settings())
    # uvicorn's own handlers are installed by now (the factory runs inside its signal capture): chain ours first.
    for sig in (signal.SIGTERM, signal.SIGINT):
        theirs = signal.getsignal(sig)

        def handler(signum: int, frame: Any, theirs: Any = theirs) -> None:
            stop_claiming()
            if callable(theirs):
                theirs(signum, frame)

        signal.signal(sig, handler)
    return app


def _run_processes(settings: DamSettings, host: str, port: int) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from services.dam.core.db import database_url, run_migrations, stop_embedded_postgres

    url = database_url(settings)  # the embedded PostgreSQL, if any, runs under this process, shared
    run_migrations(url)  # once, before the server processes start (each would otherwise race to)
    settings = settings.model_copy(update={"dam": settings.dam.model_copy(update={"database_url": url})})
    node = asyncio.run(_take_node(settings))
    # The server processes are spawned: they read the same settings from the environment.
    os.environ.update(MAAM_DAM__DATABASE_URL=url, MAAM_DAM__PORT=str(port), MAAM_DAM__PROCESSES="1")
    config = uvicorn.Config("services.dam.main:served_app", factory=True, host=host, port=port,
                            workers=settings.dam.processes, log_config=None, proxy_headers=False,
                            timeout_graceful_shutdown=DEFAULT_GRACE_S)
    sock = config.bind_socket()
    log.info("DAM: %d server processes on %s:%d", settings.dam.processes, host, port)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
        node.release()
        stop_embedded_postgres()


async def _take_node(settings: DamSettings) -> Node:
    """The data folder's node, held by the supervisor while it runs: the server processes share the folder and
    claim as temporary nodes. What a lone DAM does at startup when it holds the node, done here once before
    they start: the jobs the previous run held go back to the queue, and every temporary file is a leftover."""
    from services.dam.annotation.claims import acquire_node
    from services.dam.annotation.worker import AnnotationWorkers
    from services.dam.context import DamContext
    from services.dam.gc import collect_garbage

    ctx = await DamContext.open(settings)
    try:
        node = acquire_node(settings.dam_dir)
        if node.exclusive:
            await AnnotationWorkers(ctx.db.sessions, ctx.client, ctx.blobs, ctx.indexer, settings.dam, node,
                                    ctx.blob_links).reclaim()
            await collect_garbage(ctx, sweep=True, all_temporary=True)
    finally:
        await ctx.close()
    return node
