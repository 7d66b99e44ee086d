"""Assets: streamed upload, get, list, update, delete, download, thumbnails, annotations, reannotate."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from services.common.media import MediaError
from services.dam import metrics
from services.dam.annotation.worker import enqueue
from services.dam.api.deps import Ctx, CurrentUser, Session, require_owner, require_visible, visible_clause
from services.dam.api.validation import MAX_DB_ID, DbId, PageNumber, refuse_nul
from services.dam.blobstore import BlobTooLargeError
from services.dam.ingest_checks import UnsupportedTypeError, check_media
from services.dam.models import Annotation, Asset, Project, ProjectAsset, User
from services.dam.schemas import AnnotationOut, AssetOut, AssetUpdate, LookupIn, Page, UploadOut
from services.dam.thumbnails import SIZES, thumbnail
from services.dam.upload import UploadFormError, parse_streamed_form

router = APIRouter(prefix="/assets", tags=["assets"])

MAX_TAGS = 100
MAX_TAG_CHARS = 64


def parse_tags(raw: str | list[str] | None) -> list[str]:
    items = raw if isinstance(raw, list) else (raw or "").split(",")
    tags = sorted({t.strip() for t in items if t and t.strip()})
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in tags):
        raise HTTPException(422, f"at most {MAX_TAGS} tags of at most {MAX_TAG_CHARS} characters each")
    for tag in tags:
        refuse_nul(tag, "tags")
    return tags


def _field(fields: dict[str, str], name: str, limit: int) -> str:
    value = fields.get(name, "")
    if len(value) > limit:
        raise HTTPException(422, f"`{name}` is longer than {limit} characters")
    return refuse_nul(value, f"`{name}`")


async def get_visible_asset(session: Session, asset_id: int, user: User) -> Asset:
    return require_visible(await session.get(Asset, asset_id), user, "asset")


async def add_to_project(session: Session, project_id: int, asset_ids: list[int], user: User) -> None:
    project = require_owner(await session.get(Project, project_id), user, "project")
    for asset_id in asset_ids:
        await session.merge(ProjectAsset(project_id=project.id, asset_id=asset_id))


# The route's own cap (MAAM_DAM__MAX_UPLOAD_MB) is enforced while the file streams in (BlobWriter); this
# only lifts the small default body limit of the JSON routes for it.
UPLOAD_BODY_CEILING = 2**40


@router.post("", response_model=UploadOut, status_code=status.HTTP_201_CREATED, max_body_size=UPLOAD_BODY_CEILING,
             responses={200: {"description": "the same bytes were already uploaded by this user"}})
async def upload(request: Request, ctx: Ctx, user: CurrentUser, session: Session) -> Any:
    """multipart/form-data: `file` (required), `title`, `description`, `tags` (comma separated),
    `visibility` (private|public), `project_id`. The file is streamed to a temporary file; the type comes
    from its bytes; the row and its annotation job are committed in one transaction, and only then does
    the file move to its content address (a refused upload leaves nothing behind)."""
    cap = ctx.settings.dam.max_upload_mb * 1024 * 1024
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap + 256 * 1024:
        metrics.UPLOAD_REJECTS.labels("too_large").inc()
        raise HTTPException(413, f"the upload is larger than the {ctx.settings.dam.max_upload_mb} MiB limit")
    try:
        form = await parse_streamed_form(request.headers.get("content-type"), request.stream(), ctx.blobs, cap)
    except BlobTooLargeError as exc:
        metrics.UPLOAD_REJECTS.labels("too_large").inc()
        raise HTTPException(413, str(exc)) from exc
    except UploadFormError as exc:
        raise HTTPException(422, str(exc)) from exc
    files = [f for f in form.files if f[0] == "file"]
    if not files:
        form.abort()
        raise HTTPException(422, "the multipart body has no `file` part")
    _, filename, writer = files[0]
    try:
        visibility = form.fields.get("visibility", "private") or "private"
        if visibility not in ("private", "public"):
            raise HTTPException(422, "`visibility` must be `private` or `public`")
        refuse_nul(filename, "the file name")
        title = _field(form.fields, "title", 500) or filename[:500]
        description = _field(form.fields, "description", 10_000)
        tags = parse_tags(_field(form.fields, "tags", MAX_TAGS * (MAX_TAG_CHARS + 1)))
        project_id = form.fields.get("project_id") or None
        if project_id is not None and not (project_id.isdigit() and 1 <= int(project_id) <= MAX_DB_ID):
            raise HTTPException(422, f"`project_id` must be a number between 1 and {MAX_DB_ID}")
        if writer.size == 0:
            raise HTTPException(422, "the file is empty")
        try:
            checked = await asyncio.to_thread(check_media, writer.head, writer.tmp_path,
                                              ctx.settings.media.max_image_pixels)
        except UnsupportedTypeError as exc:
            metrics.UPLOAD_REJECTS.labels("type").inc()
            raise HTTPException(415, str(exc)) from exc
        except MediaError as exc:
            metrics.UPLOAD_REJECTS.labels("corrupt").inc()
            raise HTTPException(422, str(exc)) from exc
    except HTTPException:
        form.abort()
        raise
    sha = writer.sha256
    try:
        existing = (await session.execute(select(Asset).where(
            Asset.owner_id == user.id, Asset.sha256 == sha, Asset.deleted_at.is_(None)))).scalar_one_or_none()
        if existing is not None:
            # Moves the bytes in when the stored blob is missing (a DAM killed after the row's commit), or
            # drops the temporary file.
            await asyncio.to_thread(writer.commit)
            return JSONResponse(UploadOut.model_validate(existing).model_copy(update={"duplicate": True})
                                .model_dump(mode="json"), status_code=200)
        annotate = checked.kind in ("image", "video")
        asset = Asset(owner_id=user.id, visibility=visibility, title=title, description=description, tags=tags,
                      filename=filename[:500], mime=checked.mime, kind=checked.kind, size=writer.size, sha256=sha,
                      width=checked.width, height=checked.height, duration=checked.duration,
                      annotation_state="pending" if annotate else "skipped")
        session.add(asset)
        await session.flush()
        if annotate:
            await enqueue(session, asset.id)
        if project_id is not None:
            await add_to_project(session, int(project_id), [asset.id], user)
        await session.commit()
    except IntegrityError as exc:  # the same bytes raced in from a parallel request
        writer.abort()
        await session.rollback()
        raise HTTPException(409, "this file is being uploaded by another request; retry") from exc
    except BaseException:  # a refused project, a lost database, a cancelled request: no blob without its row
        writer.abort()
        raise
    await asyncio.to_thread(writer.commit)
    metrics.UPLOADS.labels(checked.kind).inc()
    if ctx.workers:
        ctx.workers.wake()
    await ctx.indexer.sync(asset.id)
    await session.refresh(asset)
    return UploadOut.model_validate(asset)


@router.post("/lookup", response_model=dict[str, int])
async def lookup(body: LookupIn, user: CurrentUser, session: Session) -> dict[str, int]:
    """Which of these sha256 digests this user already has (for resumable bulk ingest): {sha256: asset_id}."""
    rows = await session.execute(select(Asset.sha256, Asset.id).where(
        Asset.owner_id == user.id, Asset.deleted_at.is_(None), Asset.sha256.in_([s.lower() for s in body.sha256])))
    return {sha: asset_id for sha, asset_id in rows.all()}


@router.get("", response_model=Page)
async def list_assets(
    user: CurrentUser, session: Session,
    page: Annotated[PageNumber, Query()] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
    mine: bool = False,
) -> Page:
    """Assets this user may see (their own and public ones; `mine` = their own only), newest first."""
    where = [Asset.deleted_at.is_(None)]
    if (visible := visible_clause(Asset, user, mine)) is not None:
        where.append(visible)
    total = (await session.execute(select(func.count()).select_from(Asset).where(*where))).scalar_one()
    rows = await session.execute(select(Asset).where(*where).order_by(Asset.id.desc())
                                 .offset((page - 1) * size).limit(size))
    return Page(total=total, page=page, size=size, items=[AssetOut.model_validate(a) for a in rows.scalars()])


@router.get("/{asset_id}", response_model=AssetOut)
async def get_asset(asset_id: DbId, user: CurrentUser, session: Session) -> Asset:
    return await get_visible_asset(session, asset_id, user)


@router.patch("/{asset_id}", response_model=AssetOut)
async def update_asset(asset_id: DbId, body: AssetUpdate, user: CurrentUser, session: Session, ctx: Ctx) -> Asset:
    asset = require_owner(await session.get(Asset, asset_id), user, "asset")
    values = body.model_dump(exclude_none=True)
    if "tags" in values:
        values["tags"] = parse_tags(values["tags"])
    for key, value in values.items():
        setattr(asset, key, value)
    await session.commit()
    await ctx.indexer.sync(asset.id)
    await session.refresh(asset)
    return asset


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_asset(asset_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> None:
    """Soft delete: gone from every listing and search now; the blob is purged after the grace period."""
    asset = require_owner(await session.get(Asset, asset_id), user, "asset")
    asset.deleted_at = func.now()
    await session.commit()
    await ctx.indexer.sync(asset_id)  # no live asset: its document goes


@router.get("/{asset_id}/download")
async def download(asset_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> FileResponse:
    asset = await get_visible_asset(session, asset_id, user)
    path = ctx.blobs.path(asset.sha256)
    if not path.exists():
        raise HTTPException(410, "the stored file is missing; it may have been purged")
    return FileResponse(path, media_type=asset.mime, filename=asset.filename or f"asset-{asset.id}")


@router.get("/{asset_id}/thumbnail")
async def get_thumbnail(asset_id: DbId, user: CurrentUser, session: Session, ctx: Ctx,
                        size: Annotated[int, Query()] = 256) -> Response:
    if size not in SIZES:
        raise HTTPException(422, f"size must be one of {', '.join(map(str, SIZES))}")
    asset = await get_visible_asset(session, asset_id, user)
    if asset.kind not in ("image", "video"):
        raise HTTPException(404, f"no thumbnail for {asset.kind} assets")
    try:
        jpeg = await asyncio.to_thread(thumbnail, ctx.blobs.path(asset.sha256), asset.kind, size,
                                       ctx.settings.thumb_dir, asset.sha256)
    except MediaError as exc:
        raise HTTPException(422, str(exc)) from exc
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/{asset_id}/annotations", response_model=list[AnnotationOut])
async def annotations(asset_id: DbId, user: CurrentUser, session: Session) -> list[AnnotationOut]:
    """Each model's stored result and state (done/failed); the asset's overall state is on the asset."""
    await get_visible_asset(session, asset_id, user)
    rows = await session.execute(select(Annotation).where(Annotation.asset_id == asset_id)
                                 .order_by(Annotation.updated_at, Annotation.model))
    return [AnnotationOut(model=a.model, task=a.task, state=a.state, data=a.data, error=a.error,
                          updated_at=a.updated_at) for a in rows.scalars()]


@router.post("/{asset_id}/reannotate", response_model=AssetOut, status_code=status.HTTP_202_ACCEPTED)
async def reannotate(asset_id: DbId, user: CurrentUser, session: Session, ctx: Ctx) -> Asset:
    asset = require_owner(await session.get(Asset, asset_id), user, "asset")
    if asset.kind not in ("image", "video"):
        raise HTTPException(422, f"{asset.kind} assets are not annotated")
    active = (await session.execute(text(
        "SELECT 1 FROM annotation_jobs WHERE asset_id = :id AND state IN ('queued', 'running')"),
        {"id": asset_id})).first()
    if active is None:
        await enqueue(session, asset_id)
    asset.annotation_state = "pending"
    asset.annotation_error = None
    await session.commit()
    if ctx.workers:
        ctx.workers.wake()
    await session.refresh(asset)
    return asset
