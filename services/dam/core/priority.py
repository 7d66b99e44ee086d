"""Interactive requests before annotation: the API counts its requests in flight, and the annotation
workers, before each claim and each stored result, wait for a moment without any (at most `max_wait_s`,
so annotation slows down under load but never stops). The blob links the annotation service fetches are
annotation's own traffic, not counted."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Receive, Scope, Send


class Foreground:
    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self.busy = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    def enter(self) -> None:
        self.busy += 1
        self._quiet.clear()

    def leave(self) -> None:
        self.busy -= 1
        if self.busy <= 0:
            self.busy = 0
            self._quiet.set()

    async def yield_to(self) -> None:
        """Returns when no interactive request is in flight, or after `max_wait_s`."""
        if self.max_wait_s <= 0 or not self.busy:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), self.max_wait_s)


class ForegroundMiddleware:
    """Counts the /api requests in flight (not /api/blobs/, the annotation service's downloads)."""

    def __init__(self, app: ASGIApp, foreground: Foreground) -> None:
        self.app = app
        self.foreground = foreground

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or path.startswith("/api/blobs/"):
            await self.app(scope, receive, send)
            return
        self.foreground.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.foreground.leave()
