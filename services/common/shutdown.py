"""Graceful shutdown: on SIGTERM stop taking new work, let what is in flight finish within a grace
period, then cancel the rest (whose `finally`/`except CancelledError` blocks release what they
hold, e.g. claimed outbox rows).

- `GracefulShutdown`: the signal -> event, plus a set of tracked in-flight tasks to drain.
- `serve_http(app, host, port)`: uvicorn with our JSON logs and a graceful-shutdown timeout
  (uvicorn stops accepting on SIGTERM, finishes open requests, then runs the app's lifespan
  shutdown, where background workers drain).
- `serve_grpc_until_signal(server, health)`: health NOT_SERVING first so balancers drain us, then
  `server.stop(grace)`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 25.0  # under Docker's default 30 s stop timeout (compose stop_grace_period)


class GracefulShutdown:
    """Tracks in-flight work and turns SIGTERM/SIGINT into `stopping`."""

    def __init__(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        self.grace_s = grace_s
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()
        self._installed: list[tuple[asyncio.AbstractEventLoop, signal.Signals]] = []

    @property
    def stopping(self) -> asyncio.Event:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    @property
    def requested(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    def request(self, reason: str = "requested") -> None:
        if not self.requested:
            log.info("graceful shutdown started (%s); %d task(s) in flight", reason, len(self._tasks))
        self.stopping.set()

    def install(self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """Handles the signals on the running loop (call from inside it, main thread)."""
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, self.request, sig.name)
            self._installed.append((loop, sig))

    def uninstall(self) -> None:
        for loop, sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    async def wait(self) -> None:
        await self.stopping.wait()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Runs `coro` as tracked in-flight work: `drain` waits for it."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, grace_s: float | None = None) -> int:
        """Waits up to the grace period for tracked work, then cancels what is left (and waits for
        its cleanup). Returns how many tasks had to be cancelled."""
        self.request("drain")
        grace = self.grace_s if grace_s is None else grace_s
        pending = set(self._tasks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d task(s) still running after the %.0f s grace period", len(pending), grace)
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)


def serve_http(
    app: Any,
    host: str,
    port: int,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    on_signal: Callable[[], None] | None = None,
    **uvicorn_options: Any,
) -> None:
    """Runs a FastAPI/ASGI app until SIGTERM/SIGINT; open requests get `grace_s` to finish.

    `on_signal` runs in the signal handler itself, before uvicorn drains its connections, so
    background workers can stop taking new work at once (it must only set flags: no awaiting).
    `log_config=None` keeps the JSON logging set up by `configure_logging`."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if on_signal is not None:
                try:
                    on_signal()
                except Exception:  # never let a hook keep the server from stopping
                    log.exception("shutdown hook failed")
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=grace_s,
        **uvicorn_options,
    )
    Server(config).run()


async def serve_grpc_until_signal(
    server: Any,
    health_servicer: Any | None = None,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    shutdown: GracefulShutdown | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Waits for SIGTERM/SIGINT (or `shutdown.request()`), then reports NOT_SERVING, lets in-flight
    calls finish within `grace_s` (new ones are refused), and runs `on_stop` (close backends)."""
    shutdown = shutdown or GracefulShutdown(grace_s)
    shutdown.install()
    try:
        await shutdown.wait()
    finally:
        shutdown.uninstall()
    if health_servicer is not None:
        await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=grace_s)
    await shutdown.drain()
    if on_stop is not None:
        await on_stop()
