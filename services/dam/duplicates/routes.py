"""Near-duplicate routes: an asset's near-duplicates, the library's duplicate groups, and resolving them
(keep one and delete the others, or dismiss: "not duplicates"), one group or many at once."""

from __future__ import annotations

from itertools import combinations
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import func, text

from services.dam.api.deps import Ctx, CurrentUser, Session, require_owner, require_visible
from services.dam.api.validation import DbId
from services.dam.duplicates import queries
from services.dam.models import Asset

router = APIRouter(tags=["duplicates"])

class Resolution(BaseModel):
    keep: DbId
    delete: list[DbId] = Field(min_length=1, max_length=1000)


class ResolveIn(BaseModel):
    groups: list[Resolution] = Field(min_length=1, max_length=1000)


class DismissIn(BaseModel):
    # Each group: assets that are not near-duplicates of one another (every pair among them is dismissed).
    groups: list[list[DbId]] = Field(min_length=1, max_length=1000)


def _enabled(ctx: Ctx) -> bool:
    return bool(ctx.settings.dam.ndd_url)


@router.get("/assets/{asset_id}/duplicates")
async def asset_duplicates(asset_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> dict[str, Any]:
    """The asset's near-duplicates the user may see, best first; `state` says whether NDD has the asset yet
    (`waiting` for annotation, `queued`, `indexed`, `failed`) and `enabled` whether NDD is configured."""
    require_visible(await session.get(Asset, asset_id), user, "asset")
    state, error = await queries.asset_state(session, asset_id)
    return {"asset_id": asset_id, "enabled": _enabled(ctx), "state": state, "error": error,
            "threshold": ctx.settings.dam.ndd_threshold,
            "duplicates": await queries.asset_matches(session, asset_id, user)}


@router.get("/duplicates")
async def duplicate_groups(user: CurrentUser, session: Session, ctx: Ctx,
                           offset: int = Query(0, ge=0, le=10**9), limit: int = Query(50, ge=1, le=500)
                           ) -> dict[str, Any]:
    """Groups of near-duplicates holding at least one of the user's assets, best-scored first."""
    return {"enabled": _enabled(ctx)} | await queries.library_groups(session, user, offset, limit)


@router.get("/duplicates/status")
async def duplicate_status(user: CurrentUser, session: Session, ctx: Ctx) -> dict[str, Any]:
    """How many of the user's assets NDD holds, has queued, or refused."""
    return {"enabled": _enabled(ctx), "assets": await queries.sync_counts(session, user)}


@router.post("/duplicates/resolve")
async def resolve(body: ResolveIn, user: CurrentUser, session: Session, ctx: Ctx) -> dict[str, Any]:
    """Keeps one asset of each group and deletes the others (soft delete, as DELETE /api/assets/{id}).
    Every asset is checked first: one the user may not delete refuses the whole request, nothing deleted."""
    doomed: list[Asset] = []
    for group in body.groups:
        if group.keep in group.delete:
            raise HTTPException(422, f"asset {group.keep} is both kept and deleted")
        require_visible(await session.get(Asset, group.keep), user, "asset")
        doomed += [require_owner(await session.get(Asset, i), user, "asset") for i in group.delete]
    for asset in doomed:
        asset.deleted_at = func.now()
    await session.commit()
    for asset in doomed:
        await ctx.indexer.sync(asset.id)  # gone from search now, as a plain delete
    if ctx.ndd_sync is not None:
        ctx.ndd_sync.wake()  # NDD forgets them on its next round
    return {"deleted": sorted({a.id for a in doomed})}


@router.post("/duplicates/dismiss", status_code=status.HTTP_200_OK)
async def dismiss(body: DismissIn, user: CurrentUser, session: Session) -> dict[str, Any]:
    """Marks every pair within each group as "not near-duplicates" for this user."""
    rows = []
    for group in body.groups:
        ids = sorted(set(group))
        if len(ids) < 2:
            raise HTTPException(422, "a dismissed group needs at least two assets")
        for asset_id in ids:
            require_visible(await session.get(Asset, asset_id), user, "asset")
        rows += [{"user": user.id, "a": a, "b": b} for a, b in combinations(ids, 2)]
    await session.execute(text("INSERT INTO ndd_dismissals (user_id, asset_a, asset_b) VALUES (:user, :a, :b) "
                               "ON CONFLICT DO NOTHING"), rows)
    await session.commit()
    return {"dismissed": len(rows)}
