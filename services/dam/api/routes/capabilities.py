"""GET /api/capabilities: what works with the models installed now (asked from the annotation service), and
for each feature that does not, the one command that enables it."""

from __future__ import annotations

from fastapi import APIRouter

from services.dam.api.deps import Ctx, CurrentUser
from services.dam.capabilities import FEATURES, REANNOTATE

router = APIRouter(tags=["capabilities"])


@router.get("/capabilities")
async def capabilities(ctx: Ctx, _: CurrentUser) -> dict:
    caps = await ctx.capabilities.get()
    configured = ctx.settings.dam.annotation_models
    return {
        "reachable": caps.reachable,
        "error": caps.error,
        "features": {name: caps.feature(name) for name in FEATURES},
        "annotates": {media: caps.annotates(media, configured) for media in ("image", "video")},
        "missing": {media: caps.missing(media) for media in ("image", "video")},
        "after_install": REANNOTATE,
        "tasks": [{"task": r.task, "media": r.media, "models": r.models, "available": r.available,
                   "enable_command": r.enable_command, "builtin": r.builtin} for r in caps.rows],
    }
