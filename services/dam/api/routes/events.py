"""GET /api/events: live updates of the assets this user may see, as server-sent events (services/dam/events.py).

Each message is `event: assets` with `{"assets": [ids]}` (these changed: reload them), or `event: resync`
(reload the page's data: updates were lost). A comment line every few seconds keeps proxies from closing the
stream. Browsers read it with fetch (the bearer token goes in the header, as for every other route)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse

from services.dam.api.deps import Ctx, CurrentUser
from services.dam.context import DamContext
from services.dam.events import MAX_PER_USER, TooManySubscribers, Viewer

router = APIRouter(tags=["events"])
KEEPALIVE_S = 15.0
DISCONNECT_CHECK_S = 1.0


def _frame(message: dict) -> str:
    if message.get("resync") or message.get("closing"):
        return "event: resync\ndata: {}\n\n"
    return f"event: assets\ndata: {json.dumps({'assets': message['assets']})}\n\n"


async def _stream(request: Request, ctx: DamContext, viewer: Viewer) -> AsyncIterator[str]:
    # Subscribed here, inside the body, so that a stream that never starts leaves nothing registered.
    try:
        async with ctx.events.subscribe(viewer) as subscriber:
            yield "retry: 3000\n: live updates\n\n"
            quiet = 0.0
            # Woken every second to notice a client that left (its place counts against the per-user bound).
            while not await request.is_disconnected():
                try:
                    message = await asyncio.wait_for(subscriber.queue.get(), DISCONNECT_CHECK_S)
                except TimeoutError:
                    quiet += DISCONNECT_CHECK_S
                    if quiet >= KEEPALIVE_S:
                        quiet = 0.0
                        yield ": keepalive\n\n"
                    continue
                quiet = 0.0
                yield _frame(message)
                if message.get("closing"):
                    return
    except TooManySubscribers:  # lost a race for the last place: the client retries
        return


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
                       429: {"description": "too many live update streams open for this user"}})
async def events(request: Request, ctx: Ctx, user: CurrentUser) -> StreamingResponse:
    viewer = Viewer(user.id, user.is_admin)
    if not ctx.events.has_room(viewer):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"at most {MAX_PER_USER} live update streams per "
                            "user are open; close a tab", headers={"Retry-After": "30"})
    return StreamingResponse(_stream(request, ctx, viewer), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
