"""User-made detectors (source document 2.3): prototypes from anchor images; an asset matches by the
maximum cosine similarity between any prototype and its whole-image or region vectors."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, UploadFile, status
from sqlalchemy import func, select, text

from services.common.media import MediaError, open_image
from services.dam.annotation.client import AnnotationServiceError
from services.dam.api import query_vectors
from services.dam.api.deps import Ctx, CurrentUser, Session, require_owner, require_visible, visible_clause
from services.dam.api.validation import MULTIPART_SLACK, DbId, MiB, SafeStr, StoredSimilarity
from services.dam.models import Detector, DetectorPrototype, User
from services.dam.schemas import DetectorOut, DetectorUpdate, Match

router = APIRouter(prefix="/detectors", tags=["detectors"])
log = logging.getLogger(__name__)
MAX_ANCHORS = 32
MAX_ANCHOR_BYTES = 20 * 1024 * 1024
# All anchors of one request together; the body stops being read past this.
MAX_ANCHORS_BODY = 64 * MiB + MULTIPART_SLACK

# Best (prototype, vector) pair per asset among assets the viewer may see; a prototype meets vectors of its own model.
_MATCHES = text("""
SELECT DISTINCT ON (v.asset_id) v.asset_id, 1 - (v.embedding <=> p.embedding) AS score, v.kind, v.box,
    p.model AS space
FROM detector_prototypes p
JOIN asset_vectors v ON v.model = p.model
JOIN assets a ON a.id = v.asset_id AND a.deleted_at IS NULL
WHERE p.detector_id = :detector AND (:admin OR a.owner_id = :viewer OR a.visibility = 'public')
ORDER BY v.asset_id, v.embedding <=> p.embedding
""")


async def _out(session: Session, detector: Detector) -> DetectorOut:
    count = (await session.execute(select(func.count()).select_from(DetectorPrototype)
                                   .where(DetectorPrototype.detector_id == detector.id))).scalar_one()
    return DetectorOut.model_validate(detector).model_copy(update={"prototypes": count})


@router.post("", response_model=DetectorOut, status_code=status.HTTP_201_CREATED, max_body_size=MAX_ANCHORS_BODY)
async def create_detector(
    user: CurrentUser, session: Session, ctx: Ctx,
    name: Annotated[SafeStr, Form(min_length=1, max_length=100)],
    anchors: Annotated[list[UploadFile], Form(description="n >= 1 images of the object, centred.")],
    threshold: Annotated[StoredSimilarity | None, Form()] = None,
    visibility: Annotated[str, Form(pattern="^(private|public)$")] = "private",
) -> DetectorOut:
    if not anchors or len(anchors) > MAX_ANCHORS:
        raise HTTPException(422, f"give between 1 and {MAX_ANCHORS} anchor images")
    spaces = await query_vectors.prototype_spaces(ctx, session)
    prototypes: list[tuple[str, list[float]]] = []
    for anchor in anchors:
        data = await anchor.read(MAX_ANCHOR_BYTES + 1)
        if len(data) > MAX_ANCHOR_BYTES:
            raise HTTPException(413, f"anchor {anchor.filename!r} is larger than 20 MiB")
        try:
            await asyncio.to_thread(open_image, data)
        except MediaError as exc:
            raise HTTPException(422, f"anchor {anchor.filename!r}: {exc}") from exc
        # One prototype per space the library holds vectors in (whole-image and region models may differ):
        # a prototype meets only vectors of its own space.
        for space in spaces:
            try:
                prototypes.append(await query_vectors.of_anchor(ctx, session, data, space))
            except AnnotationServiceError as exc:
                if not exc.permanent:
                    raise HTTPException(503, f"cannot embed anchor {anchor.filename!r}: {exc}") from exc
                log.info("detector anchor: space %s is not available (%s); skipped", space, exc)
    if not prototypes:
        raise HTTPException(409, "the anchors cannot be embedded in any embedding space the library holds: "
                                 + ((await query_vectors.no_embedder(ctx)) or query_vectors.NO_EMBEDDER))
    detector = Detector(owner_id=user.id, name=name, label=name.strip().lower(), visibility=visibility,
                        threshold=ctx.settings.dam.detector_threshold if threshold is None else threshold,
                        model=prototypes[0][0])
    session.add(detector)
    await session.flush()
    for model, vector in prototypes:
        session.add(DetectorPrototype(detector_id=detector.id, model=model, embedding=vector))
    await session.commit()
    return await _out(session, detector)


@router.get("", response_model=list[DetectorOut])
async def list_detectors(user: CurrentUser, session: Session) -> list[DetectorOut]:
    stmt = select(Detector).order_by(Detector.id)
    if (visible := visible_clause(Detector, user)) is not None:
        stmt = stmt.where(visible)
    return [await _out(session, d) for d in (await session.execute(stmt)).scalars()]


@router.get("/{detector_id}", response_model=DetectorOut)
async def get_detector(detector_id: DbId, user: CurrentUser, session: Session) -> DetectorOut:
    return await _out(session, require_visible(await session.get(Detector, detector_id), user, "detector"))


@router.patch("/{detector_id}", response_model=DetectorOut)
async def update_detector(detector_id: DbId, body: DetectorUpdate, user: CurrentUser, session: Session) -> DetectorOut:
    detector = require_owner(await session.get(Detector, detector_id), user, "detector")
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(detector, key, value)
    if body.name:
        detector.label = body.name.strip().lower()
    await session.commit()
    return await _out(session, detector)


@router.delete("/{detector_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_detector(detector_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> None:
    detector = require_owner(await session.get(Detector, detector_id), user, "detector")
    labelled = [r[0] for r in (await session.execute(
        text("SELECT asset_id FROM asset_labels WHERE detector_id = :d"), {"d": detector_id})).all()]
    await session.delete(detector)
    await session.commit()
    await ctx.indexer.sync(labelled)


async def compute_matches(session: Session, detector: Detector, user: User, threshold: float | None) -> list[Match]:
    rows = (await session.execute(_MATCHES, {"detector": detector.id,
                                             "admin": user.is_admin, "viewer": user.id})).all()
    matches = [Match(asset_id=r.asset_id, score=float(r.score), matched=r.kind, box=list(r.box) if r.box else None,
                     space=r.space) for r in rows if threshold is None or r.score >= threshold]
    return sorted(matches, key=lambda m: (-m.score, m.asset_id))


@router.get("/{detector_id}/matches", response_model=list[Match])
async def matches(
    detector_id: DbId, user: CurrentUser, session: Session,
    threshold: Annotated[float | None, Query(ge=-1.0, le=1.0, allow_inf_nan=False,
                                             description="Default: the detector's own.")] = None,
    all_assets: Annotated[bool, Query(description="Rank every asset, ignoring the threshold.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Match]:
    """Assets ranked by max cosine similarity to the prototypes (whole image or any region)."""
    detector = require_visible(await session.get(Detector, detector_id), user, "detector")
    cut = None if all_assets else (detector.threshold if threshold is None else threshold)
    if cut is not None and not math.isfinite(cut):
        raise HTTPException(422, "threshold must be a number")
    return (await compute_matches(session, detector, user, cut))[:limit]


@router.post("/{detector_id}/apply", response_model=list[Match])
async def apply(
    detector_id: DbId, user: CurrentUser, session: Session, ctx: Ctx,
    threshold: Annotated[float | None, Query(ge=-1.0, le=1.0, allow_inf_nan=False)] = None,
) -> list[Match]:
    """Labels every matching asset the user owns with the detector's label (a search filter: `label=`);
    re-applying replaces the previous labelling."""
    detector = require_visible(await session.get(Detector, detector_id), user, "detector")
    cut = detector.threshold if threshold is None else threshold
    found = await compute_matches(session, detector, user, cut)
    owned = {r[0] for r in (await session.execute(text(
        "SELECT id FROM assets WHERE id = ANY(:ids) AND (owner_id = :u OR :admin)"),
        {"ids": [m.asset_id for m in found], "u": user.id, "admin": user.is_admin})).all()}
    found = [m for m in found if m.asset_id in owned]
    previous = [r[0] for r in (await session.execute(text(
        "DELETE FROM asset_labels WHERE detector_id = :d AND asset_id IN "
        "(SELECT id FROM assets WHERE owner_id = :u OR :admin) RETURNING asset_id"),
        {"d": detector.id, "u": user.id, "admin": user.is_admin})).all()]
    for m in found:
        await session.execute(text("INSERT INTO asset_labels (asset_id, detector_id, label, score) "
                                   "VALUES (:a, :d, :l, :s)"),
                              {"a": m.asset_id, "d": detector.id, "l": detector.label, "s": m.score})
    await session.commit()
    await ctx.indexer.sync(sorted(set(previous) | owned))
    return found


