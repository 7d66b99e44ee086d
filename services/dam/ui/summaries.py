"""Read-only helpers for the web UI: what an asset card shows (caption, objects, flags, detector labels)
for many assets in one request, and the saliency picture of an image (the stored result omits the PNG,
which is recomputable, so it is recomputed here on demand)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel
from sqlalchemy import select, text

from protos import media_annotation_pb2 as pb
from protos import media_annotation_pb2_grpc as pb_grpc
from services.dam.annotation.results import doc_fields
from services.dam.api.deps import Ctx, CurrentUser, Session, can_see, require_visible
from services.dam.api.validation import DbId, check_db_id
from services.dam.models import Annotation, Asset
from services.dam.moderation import apply_verdict

router = APIRouter(prefix="/ui", tags=["web ui"])
MAX_IDS = 100


class CardOut(BaseModel):
    id: int
    caption: str = ""
    objects: list[str] = []
    labels: list[str] = []
    faces: int = 0
    nsfw: bool | None = None
    disturbing: bool | None = None
    meme: bool | None = None


def _caption(rows: list[tuple[str, str, dict[str, Any] | None]]) -> str:
    for task, state, data in rows:
        if task == "captioning" and state == "done" and data:
            return str(data.get("caption", ""))
    return ""


@router.get("/cards", response_model=list[CardOut])
async def cards(user: CurrentUser, session: Session, ctx: Ctx,
                ids: Annotated[str, Query(description="Comma-separated asset ids (at most 100).",
                                          max_length=MAX_IDS * 20)]) -> list[CardOut]:
    """Card summaries of the given assets this user may see (others are left out), from PostgreSQL."""
    try:
        wanted = sorted({check_db_id(int(v), "ids") for v in ids.split(",") if v.strip()})
    except ValueError as exc:
        raise HTTPException(422, "`ids` must be comma-separated asset ids") from exc
    if len(wanted) > MAX_IDS:
        raise HTTPException(422, f"at most {MAX_IDS} ids")
    assets = [a for a in (await session.execute(select(Asset).where(Asset.id.in_(wanted)))).scalars()
              if a.deleted_at is None and can_see(a, user)]
    visible = [a.id for a in assets]
    per_asset: dict[int, list[tuple[str, str, dict[str, Any] | None]]] = {i: [] for i in visible}
    for row in (await session.execute(select(Annotation).where(Annotation.asset_id.in_(visible)))).scalars():
        per_asset[row.asset_id].append((row.task, row.state, row.data))
    labels: dict[int, list[str]] = {i: [] for i in visible}
    for asset_id, label in (await session.execute(text(
            "SELECT DISTINCT asset_id, label FROM asset_labels WHERE asset_id = ANY(:ids) ORDER BY label"),
            {"ids": visible})).all():
        labels[asset_id].append(label)
    out = []
    verdicts = {a.id: a.moderation for a in assets}
    for asset_id in visible:
        fields = apply_verdict(doc_fields(per_asset[asset_id], ctx.settings.dam.object_min_score),
                               verdicts[asset_id])
        out.append(CardOut(id=asset_id, caption=_caption(per_asset[asset_id]), objects=fields["objects"],
                           labels=labels[asset_id], faces=fields["faces"], nsfw=fields["nsfw"],
                           disturbing=fields["disturbing"], meme=fields["meme"]))
    return out


_channels: dict[str, grpc.aio.Channel] = {}


def _stub(target: str) -> pb_grpc.MediaAnnotationServerStub:
    # One channel per annotation target for the process (channels are meant to be long-lived).
    if target not in _channels:
        _channels[target] = grpc.aio.insecure_channel(target, options=[
            ("grpc.max_send_message_length", 256 * 2**20), ("grpc.max_receive_message_length", 64 * 2**20)])
    return pb_grpc.MediaAnnotationServerStub(_channels[target])


@router.get("/assets/{asset_id}/saliency.png", responses={200: {"content": {"image/png": {}}}})
async def saliency(asset_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> Response:
    """The image's saliency map (8-bit greyscale PNG, 255 = most salient), from the annotation service."""
    asset = require_visible(await session.get(Asset, asset_id), user, "asset")
    if asset.kind != "image":
        raise HTTPException(422, "saliency pictures are drawn for images only")
    data = await asyncio.to_thread(ctx.blobs.read, asset.sha256)
    try:
        reply = await _stub(ctx.settings.annotation_target).ImageSaliencyDetection(
            pb.AnnotationRequest(asset_data=data), timeout=60)
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        status = 404 if code == grpc.StatusCode.NOT_FOUND else (
            422 if code == grpc.StatusCode.INVALID_ARGUMENT else 503)
        raise HTTPException(status, f"annotation service: {code.name}: {exc.details()}") from exc
    if not reply.map.png:
        raise HTTPException(404, "the annotation service returned no saliency map")
    return Response(reply.map.png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
