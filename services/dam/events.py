"""Live asset updates for the browsers (server-sent events), fed by PostgreSQL's LISTEN/NOTIFY.

Triggers (migration 0007) notify `maam_asset_events` with (asset id, owner, visibility) on every change a page
shows, whichever process made it (API, annotation workers, CLI). One listening connection per DAM process
fans the notifications out to its subscribers, each seeing only the assets it may see (its own, public ones;
an admin every one), coalesced over a short window so a burst of results is one message of ids.

A subscriber that falls behind loses nothing that matters: its queue is bounded, and on overflow it is told
to reload (`resync`) instead of growing without limit. A lost database connection is re-established with
backoff; subscribers are told to reload after it, since notifications sent meanwhile are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "maam_asset_events"
COALESCE_S = 0.25
QUEUE_LIMIT = 64  # messages per subscriber before it is told to resync
MAX_PER_USER = 8
MAX_TOTAL = 1000


class TooManySubscribers(RuntimeError):
    """The user (or the process) has as many live streams open as it may."""


@dataclass(frozen=True)
class Viewer:
    user_id: int
    is_admin: bool

    def may_see(self, owner: int, visibility: str) -> bool:
        return self.is_admin or visibility == "public" or owner == self.user_id


@dataclass(eq=False)
class Subscriber:
    viewer: Viewer
    queue: asyncio.Queue[dict] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    pending: set[int] = field(default_factory=set)

    def offer(self, message: dict) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:  # fallen behind: drop what is queued, ask for one reload instead
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait({"resync": True})


class AssetEvents:
    def __init__(self, database_url: str) -> None:
        # SQLAlchemy's URL (postgresql+psycopg://) as libpq reads it.
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task | None = None
        self._flush: asyncio.TimerHandle | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="asset-events")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._flush is not None:
            self._flush.cancel()
        for sub in self._subscribers:
            sub.offer({"closing": True})

    def has_room(self, viewer: Viewer) -> bool:
        mine = sum(1 for s in self._subscribers if s.viewer.user_id == viewer.user_id)
        return mine < MAX_PER_USER and len(self._subscribers) < MAX_TOTAL

    @contextlib.asynccontextmanager
    async def subscribe(self, viewer: Viewer) -> AsyncIterator[Subscriber]:
        if not self.has_room(viewer):
            raise TooManySubscribers(f"at most {MAX_PER_USER} live update streams per user")
        sub = Subscriber(viewer)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    # ---- listening --------------------------------------------------------------------------
    async def _listen(self) -> None:
        import psycopg

        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if delay > 0.5:  # a reconnection: what was said meanwhile is lost
                        self._broadcast({"resync": True})
                    delay = 0.5
                    self.connected.set()
                    async for note in conn.notifies():
                        self._received(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted, a network blip: listen again
                self.connected.clear()
                log.warning("asset events: listening failed (%s); again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _received(self, payload: str) -> None:
        try:
            event = json.loads(payload)
            asset, owner, visibility = int(event["id"]), int(event["owner"]), str(event["vis"])
        except (ValueError, KeyError, TypeError):
            log.warning("asset events: unreadable notification %r", payload[:200])
            return
        for sub in self._subscribers:
            if sub.viewer.may_see(owner, visibility):
                sub.pending.add(asset)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(COALESCE_S, self._deliver)

    def _deliver(self) -> None:
        self._flush = None
        for sub in self._subscribers:
            if sub.pending:
                sub.offer({"assets": sorted(sub.pending)})
                sub.pending.clear()

    def _broadcast(self, message: dict) -> None:
        for sub in self._subscribers:
            sub.offer(message)
