"""Actions on many assets at once (the library's multi-select) and the admin's "re-annotate missing / all"
with its progress. Each asset is checked as its single-asset route checks it: only the owner (or an admin)
changes an asset; the reply says which ids were done and why the others were not."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text

from services.dam.annotation.worker import enqueue
from services.dam.api.deps import AdminUser, Ctx, CurrentUser, Session
from services.dam.api.routes.assets import add_to_project, parse_tags
from services.dam.api.validation import SafeStr
from services.dam.models import Asset
from services.dam.reannotate import NothingToRun, enqueue_plan, plan

router = APIRouter(tags=["assets"])
MAX_BULK = 500


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=MAX_BULK)
    action: Literal["tag", "untag", "add_to_project", "delete", "reannotate"]
    tags: list[Annotated[SafeStr, Field(max_length=64)]] = Field(default_factory=list, max_length=100)
    project_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class BulkOut(BaseModel):
    done: list[int]
    skipped: dict[int, str]  # asset id -> why


_ACTIVE = text("SELECT asset_id FROM annotation_jobs WHERE asset_id = ANY(:ids) AND state IN ('queued', 'running')")


@router.post("/assets/bulk", response_model=BulkOut)
async def bulk(body: BulkIn, user: CurrentUser, session: Session, ctx: Ctx) -> BulkOut:
    """Tag, untag, add to a project, delete or re-annotate the listed assets."""
    if body.action in ("tag", "untag") and not body.tags:
        raise HTTPException(422, f"`{body.action}` needs `tags`")
    if body.action == "add_to_project" and body.project_id is None:
        raise HTTPException(422, "`add_to_project` needs `project_id`")
    wanted = sorted(set(body.ids))
    found = {a.id: a for a in (await session.execute(select(Asset).where(Asset.id.in_(wanted)))).scalars()}
    skipped: dict[int, str] = {}
    mine: list[Asset] = []
    for asset_id in wanted:
        asset = found.get(asset_id)
        if asset is None or asset.deleted_at is not None or not (user.is_admin or asset.owner_id == user.id
                                                                 or asset.visibility == "public"):
            skipped[asset_id] = "not found"
        elif not (user.is_admin or asset.owner_id == user.id):
            skipped[asset_id] = "only the owner may change this asset"
        elif body.action == "reannotate" and asset.kind not in ("image", "video"):
            skipped[asset_id] = f"{asset.kind} assets are not annotated"
        else:
            mine.append(asset)
    tags = parse_tags(body.tags)
    if body.action == "add_to_project" and mine:
        await add_to_project(session, body.project_id or 0, [a.id for a in mine], user)
    active = {r[0] for r in (await session.execute(_ACTIVE, {"ids": [a.id for a in mine]})).all()}
    for asset in mine:
        if body.action == "tag":
            asset.tags = list(dict.fromkeys([*asset.tags, *tags]))
        elif body.action == "untag":
            asset.tags = [t for t in asset.tags if t not in tags]
        elif body.action == "delete":
            asset.deleted_at = func.now()
        elif body.action == "reannotate":
            if asset.id not in active:
                await enqueue(session, asset.id)
            asset.annotation_state, asset.annotation_error = "pending", None
    await session.commit()
    for asset in mine:
        await ctx.indexer.sync(asset.id)
    if body.action == "reannotate" and ctx.workers:
        ctx.workers.wake()
    return BulkOut(done=[a.id for a in mine], skipped=skipped)


_PROGRESS = text("""
SELECT count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'running'),
       count(*) FILTER (WHERE state = 'done' AND finished_at >= now() - interval '1 hour'),
       count(*) FILTER (WHERE state = 'failed' AND finished_at >= now() - interval '1 hour')
FROM annotation_jobs
""")


@router.post("/admin/reannotate", status_code=202)
async def reannotate_library(ctx: Ctx, _: AdminUser,
                             mode: Annotated[Literal["missing", "all"], Query(description=(
                                 "missing: image assets without a vector of an installed embedding model; "
                                 "all: every image and video asset, by every model"))] = "missing") -> dict:
    """Queues the jobs `maam dam reannotate` would (through the outbox); GET /api/admin/annotation-progress
    follows them."""
    try:
        work = await plan(ctx, mode)
    except NothingToRun as exc:
        raise HTTPException(409, str(exc)) from exc
    job_ids = await enqueue_plan(ctx, work)
    if ctx.workers:
        ctx.workers.wake()
    return {"queued": len(job_ids), "mode": mode, "models": work.models}


@router.get("/admin/annotation-progress")
async def annotation_progress(session: Session, _: AdminUser) -> dict[str, int]:
    """Annotation jobs now: queued, running, and done / failed in the last hour."""
    queued, running, done, failed = (await session.execute(_PROGRESS)).one()
    return {"queued": int(queued), "running": int(running), "done_last_hour": int(done),
            "failed_last_hour": int(failed)}
