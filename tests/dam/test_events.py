"""Live updates (GET /api/events) from a real DAM process: PostgreSQL's NOTIFY from the triggers reaches the
streams of the users who may see the asset, and nobody else's; streams per user are bounded."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from services.dam.events import MAX_PER_USER, QUEUE_LIMIT, Subscriber, Viewer
from tests.dam.conftest import Dam, png_bytes, upload, wait_annotated
from tests.support.processes import wait_until


class Stream:
    """Reads one user's event stream in a thread of its own (an event loop there, so that close() cancels the
    read at once and the connection really closes): the ids told, and the event names."""

    def __init__(self, dam: Dam, token: str) -> None:
        self.url, self.token = dam.url, token
        self.ids: set[int] = set()
        self.messages: list[list[int]] = []  # the ids of each `assets` message, in order
        self.kinds: list[str] = []
        self.status = 0
        self.opened = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.thread.start()
        assert self.opened.wait(30)

    async def _main(self) -> None:
        self.task = asyncio.current_task()
        try:
            client = httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"},
                                       timeout=httpx.Timeout(30, read=None))
            async with client, client.stream("GET", "/api/events") as reply:
                self.status = reply.status_code
                self.opened.set()
                kind = ""
                async for line in reply.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                        self.kinds.append(kind)
                    elif line.startswith("data: ") and kind == "assets":
                        self.messages.append(json.loads(line[6:])["assets"])
                        self.ids |= set(self.messages[-1])
        except (httpx.HTTPError, asyncio.CancelledError):  # closed by the test
            pass
        finally:
            self.opened.set()

    def close(self) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.loop.close()


def token(client: httpx.Client) -> str:
    return client.headers["Authorization"].split()[1]


def test_changes_reach_the_users_who_may_see_them_and_nobody_else(dam: Dam) -> None:
    admin = dam.user("admin-events@example.org")  # the first account is admin: it would hear of every asset
    admin_watching = Stream(dam, token(admin))
    alice, bob = dam.user("alice-events@example.org"), dam.user("bob-events@example.org")
    watching = Stream(dam, token(alice))
    try:
        assert watching.status == 200
        mine = upload(alice, png_bytes(701), "mine.png").json()["id"]
        private = upload(bob, png_bytes(702), "private.png").json()["id"]
        public = upload(bob, png_bytes(703), "public.png", visibility="public").json()["id"]
        wait_until(lambda: {mine, public} <= watching.ids, 30, what="alice hears of her asset and the public one")
        for asset in (mine, private, public):
            wait_annotated(alice if asset == mine else bob, asset)
        # A barrier: notifications reach the stream in commit order, so once alice hears of an edit made after
        # bob's private asset was done, everything about that asset (upload, results, 'done') would have come
        # before it. An edit is news too.
        told = len(watching.messages)
        alice.patch(f"/api/assets/{mine}", json={"title": "renamed"}).raise_for_status()
        wait_until(lambda: any(mine in m for m in watching.messages[told:]), 15, what="the edit reaches the stream")
        assert private not in watching.ids, watching.messages
        wait_until(lambda: {mine, private, public} <= admin_watching.ids, 15, what="an admin hears of every asset")
    finally:
        watching.close()
        admin_watching.close()
        admin.close()
        alice.close()
        bob.close()


def test_streams_per_user_are_bounded(dam: Dam) -> None:
    carol = dam.user("carol-events@example.org")
    streams = [Stream(dam, token(carol)) for _ in range(MAX_PER_USER)]
    try:
        assert {s.status for s in streams} == {200}
        refused = carol.get("/api/events")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
        assert "live update streams" in refused.json()["detail"]
    finally:
        for s in streams:
            s.close()
    # Closed streams give their places back.
    wait_until(lambda: _opens(dam, token(carol)), 15, what="a place after the streams closed")
    carol.close()


def _opens(dam: Dam, raw: str) -> bool:
    stream = Stream(dam, raw)
    stream.close()
    return stream.status == 200


@pytest.mark.asyncio
async def test_a_subscriber_that_falls_behind_is_told_to_reload() -> None:
    sub = Subscriber(Viewer(1, False))
    for i in range(QUEUE_LIMIT + 5):
        sub.offer({"assets": [i]})
    assert sub.queue.qsize() <= QUEUE_LIMIT
    messages = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert {"resync": True} in messages  # nothing lost silently: it reloads instead
    await asyncio.sleep(0)
