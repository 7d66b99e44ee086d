"""Moderation: the evidence the NSFW / disturbing-content models gave (label, score, regions), an owner's or
admin's verdict that overrides them (PUT), and the review list of flagged assets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select, text

from services.dam.api.deps import Ctx, CurrentUser, Session, require_owner
from services.dam.api.validation import DbId
from services.dam.models import Annotation, Asset
from services.dam.schemas import AssetOut

router = APIRouter(tags=["moderation"])
MAX_REVIEW = 200


class VerdictIn(BaseModel):
    verdict: Literal["safe", "sensitive"] | None


class Evidence(BaseModel):
    task: str
    model: str
    flagged: bool
    score: float | None = None
    threshold: float | None = None
    label: str | None = None  # the strongest label or region (e.g. a body part)
    regions: list[dict[str, Any]] = []  # normalised boxes with label and score
    frames: int = 0  # video: sampled frames over the threshold


class ReviewItem(BaseModel):
    asset: AssetOut
    flagged_by_models: bool
    evidence: list[Evidence]


def evidence_of(task: str, model: str, data: dict[str, Any]) -> Evidence:
    key = "is_nsfw" if task == "nsfw" else "is_disturbing"
    regions = [{"label": r.get("label", ""), "score": float(r.get("score", 0)), "box": r.get("box", {})}
               for r in data.get("regions", []) if r.get("box")]
    regions.sort(key=lambda r: -r["score"])
    labels = sorted(data.get("labels", []), key=lambda label: -float(label.get("score", 0)))
    threshold = float(data.get("threshold", 0.5))
    frames = [f for f in data.get("frames", []) if f.get(key) or float(f.get("score", 0)) >= threshold]
    label = regions[0]["label"] if regions else (labels[0].get("label") if labels else None)
    raw = data.get("score", data.get("max_score"))  # a video's is its highest keyframe's
    score = float(raw) if raw is not None else None
    return Evidence(task=task, model=model, flagged=bool(data.get(key)), score=score,
                    threshold=data.get("threshold"), label=label or None, regions=regions[:20], frames=len(frames))


async def _evidence(session: Session, asset_ids: list[int]) -> dict[int, list[Evidence]]:
    rows = (await session.execute(select(Annotation).where(
        Annotation.asset_id.in_(asset_ids), Annotation.task.in_(("nsfw", "disturbing")),
        Annotation.state == "done"))).scalars()
    out: dict[int, list[Evidence]] = {i: [] for i in asset_ids}
    for row in rows:
        if row.data is not None:
            out[row.asset_id].append(evidence_of(row.task, row.model, row.data))
    return out


@router.get("/assets/{asset_id}/moderation", response_model=ReviewItem)
async def moderation_of(asset_id: DbId, user: CurrentUser, session: Session) -> ReviewItem:
    from services.dam.api.routes.assets import get_visible_asset

    asset = await get_visible_asset(session, asset_id, user)
    evidence = (await _evidence(session, [asset.id]))[asset.id]
    return ReviewItem(asset=AssetOut.model_validate(asset), flagged_by_models=any(e.flagged for e in evidence),
                      evidence=evidence)


@router.put("/assets/{asset_id}/moderation", response_model=AssetOut)
async def set_verdict(asset_id: DbId, body: VerdictIn, user: CurrentUser, session: Session, ctx: Ctx) -> Asset:
    """Marks the asset safe or sensitive (owner or admin); `null` gives the decision back to the models.
    Search, facets and blur follow at once."""
    asset = require_owner(await session.get(Asset, asset_id), user, "asset")
    asset.moderation = body.verdict
    asset.moderated_by = user.id if body.verdict else None
    asset.moderated_at = datetime.now(UTC) if body.verdict else None
    await session.commit()
    await ctx.indexer.sync(asset.id)
    await session.refresh(asset)
    return asset


_FLAGGED = text("""
SELECT a.id FROM assets a
WHERE a.deleted_at IS NULL AND (:admin OR a.owner_id = :viewer)
  AND (a.moderation = 'sensitive' OR EXISTS (
        SELECT 1 FROM annotations n WHERE n.asset_id = a.id AND n.state = 'done' AND n.task IN ('nsfw', 'disturbing')
          AND (n.data->>'is_nsfw' = 'true' OR n.data->>'is_disturbing' = 'true')))
  AND (NOT :unreviewed OR a.moderation IS NULL)
ORDER BY a.created_at DESC, a.id DESC LIMIT :limit
""")


@router.get("/moderation/review", response_model=list[ReviewItem])
async def review(user: CurrentUser, session: Session,
                 unreviewed: Annotated[bool, Query(description="Only assets no one has given a verdict on.")] = False,
                 size: Annotated[int, Query(ge=1, le=MAX_REVIEW)] = 100) -> list[ReviewItem]:
    """Flagged assets (by a model, or marked sensitive) that this user may moderate: an admin sees everyone's."""
    ids = [r[0] for r in (await session.execute(_FLAGGED, {"admin": user.is_admin, "viewer": user.id,
                                                           "unreviewed": unreviewed, "limit": size})).all()]
    assets = {a.id: a for a in (await session.execute(select(Asset).where(Asset.id.in_(ids)))).scalars()}
    evidence = await _evidence(session, ids)
    return [ReviewItem(asset=AssetOut.model_validate(assets[i]), flagged_by_models=any(e.flagged for e in evidence[i]),
                       evidence=evidence[i]) for i in ids if i in assets]

