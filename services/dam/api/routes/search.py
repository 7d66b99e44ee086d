"""GET /api/search (text, filters, facets, kNN similar to an asset or a region) and POST /api/search/similar."""

from __future__ import annotations

import asyncio
import io
import math
import time
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, UploadFile
from sqlalchemy import select, text

from services.common.media import MediaError, open_image
from services.dam import metrics
from services.dam.annotation.client import AnnotationServiceError
from services.dam.api.deps import Ctx, CurrentUser, Session, can_see
from services.dam.api.validation import MULTIPART_SLACK, BoundedDate, DbId, PageNumber, SafeStr, check_db_id
from services.dam.models import Asset, Project, User
from services.dam.schemas import AssetOut, SearchHitOut, SearchOut
from services.dam.search.base import MAX_PAGE_SIZE, MAX_QUERY_CHARS, SearchQuery, Tri

router = APIRouter(prefix="/search", tags=["search"])
MAX_SIMILAR_UPLOAD = 20 * 1024 * 1024


class SearchParams:
    """Query parameters shared by every search endpoint."""

    def __init__(
        self,
        q: Annotated[SafeStr | None, Query(description="Full text over title, description, tags, captions, OCR text "
                                                   "(web-search syntax: quotes, OR, -word).")] = None,
        type: Annotated[list[SafeStr] | None, Query(description="image, video, model3d")] = None,
        objects: Annotated[list[SafeStr] | None, Query(description="Detected object labels; all must be present.")
                           ] = None,
        label: Annotated[list[SafeStr] | None, Query(description="Labels of applied user-made detectors.")] = None,
        faces: bool | None = None,
        nsfw: Tri = "include",
        disturbing: Tri = "include",
        meme: Tri = "include",
        uploaded_from: BoundedDate | None = None,
        uploaded_to: Annotated[BoundedDate | None, Query(description="Inclusive.")] = None,
        owner: Annotated[SafeStr | None, Query(description="A user id or `me`.", pattern=r"^(me|[0-9]{1,19})$")
                         ] = None,
        project: DbId | None = None,
        min_score: Annotated[float | None, Query(ge=-1, le=1, allow_inf_nan=False)] = None,
        page: Annotated[PageNumber, Query()] = 1,
        size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
        facets: bool = True,
    ) -> None:
        if q is not None and len(q) > MAX_QUERY_CHARS:
            raise HTTPException(422, f"the query is longer than {MAX_QUERY_CHARS} characters")
        for values, name in ((type, "type"), (objects, "objects"), (label, "label")):
            if values and (len(values) > 20 or any(len(v) > 100 for v in values)):
                raise HTTPException(422, f"at most 20 `{name}` values of at most 100 characters")
        bad = set(type or []) - {"image", "video", "model3d"}
        if bad:
            raise HTTPException(422, f"unknown type(s) {sorted(bad)}: use image, video or model3d")
        if owner is not None and owner != "me":
            check_db_id(int(owner), "owner")
        self.q = q.strip() if q and q.strip() else None
        self.kinds, self.objects, self.labels = type or [], objects or [], label or []
        self.faces, self.nsfw, self.disturbing, self.meme = faces, nsfw, disturbing, meme
        utc = timezone.utc  # noqa: UP017 - explicit for readers
        self.uploaded_from = datetime.combine(uploaded_from, dtime.min, utc) if uploaded_from else None
        self.uploaded_to = datetime.combine(uploaded_to + timedelta(days=1), dtime.min, utc) if uploaded_to else None
        self.owner, self.project, self.min_score = owner, project, min_score
        self.page, self.size, self.facets = page, size, facets

    async def to_query(self, user: User, session: Session) -> SearchQuery:
        if self.project is not None:
            project = await session.get(Project, self.project)
            if project is None or not can_see(project, user):
                raise HTTPException(404, "project not found")
        return SearchQuery(
            viewer_id=user.id, is_admin=user.is_admin, q=self.q, kinds=self.kinds, objects=self.objects,
            labels=self.labels, faces=self.faces, nsfw=self.nsfw, disturbing=self.disturbing, meme=self.meme,
            uploaded_from=self.uploaded_from, uploaded_to=self.uploaded_to,
            owner_id=user.id if self.owner == "me" else (int(self.owner) if self.owner else None),
            project_id=self.project, min_score=self.min_score, page=self.page, size=self.size, facets=self.facets,
        )


def parse_box(raw: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in raw.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
        raise HTTPException(422, "`box` must be four numbers x_min,y_min,x_max,y_max between 0 and 1")
    x0, y0, x1, y1 = values
    if x1 <= x0 or y1 <= y0:
        raise HTTPException(422, "`box` must have x_min < x_max and y_min < y_max")
    return values  # type: ignore[return-value]


async def asset_vector(session: Session, asset: Asset) -> tuple[str, list[float]]:
    """(embedding model, vector) of the asset's indexed whole-image embedding."""
    row = (await session.execute(text(
        "SELECT embedding_model, embedding::text FROM search_docs WHERE asset_id = :id AND embedding IS NOT NULL"),
        {"id": asset.id})).first()
    if row is None:
        raise HTTPException(409, f"asset {asset.id} has no image embedding yet (annotation state: "
                                 f"{asset.annotation_state}); try again when it is annotated")
    return row[0], [float(x) for x in row[1].strip("[]").split(",")]


def crop_png(data: bytes, box: tuple[float, float, float, float]) -> bytes:
    image = open_image(data)
    w, h = image.size
    # The annotation service's own rounding (services/annotation/models/preprocess.py: crop).
    x0, y0 = min(math.floor(box[0] * w), w - 1), min(math.floor(box[1] * h), h - 1)
    area = (x0, y0, min(max(math.ceil(box[2] * w), x0 + 1), w), min(max(math.ceil(box[3] * h), y0 + 1), h))
    out = io.BytesIO()
    image.convert("RGB").crop(area).save(out, "PNG")
    return out.getvalue()


async def region_vector(ctx: Ctx, session: Session, asset: Asset, box: tuple[float, float, float, float]
                        ) -> tuple[str, list[float]]:
    """The region's embedding, on the fly through ImageRegionFeatureExtraction. When the region model's space is
    not the one the index holds (e.g. a separate region embedder), the crop goes through the index's model."""
    data = await asyncio.to_thread(ctx.blobs.read, asset.sha256)
    indexed_model, _ = await asset_vector(session, asset)
    try:
        model, vector = await ctx.client.region_embedding(data, box)
        if model != indexed_model:
            crop = await asyncio.to_thread(crop_png, data, box)
            model, vector = await ctx.client.image_embedding(crop)
    except AnnotationServiceError as exc:
        raise _service_error(exc) from exc
    return model, vector


async def run_search(ctx: Ctx, session: Session, query: SearchQuery, mode: str) -> SearchOut:
    started = time.perf_counter()
    result = await ctx.backend.search(query)
    metrics.SEARCH_LATENCY.labels(mode).observe(time.perf_counter() - started)
    ids = [h.asset_id for h in result.hits]
    assets = {a.id: a for a in (await session.execute(
        select(Asset).where(Asset.id.in_(ids), Asset.deleted_at.is_(None)))).scalars()}
    hits = [SearchHitOut(asset=AssetOut.model_validate(assets[h.asset_id]), score=h.score, highlights=h.highlights)
            for h in result.hits if h.asset_id in assets]
    return SearchOut(total=result.total, total_relation=result.total_relation, page=query.page, size=query.size,
                     hits=hits, facets=result.facets)


def _service_error(exc: AnnotationServiceError) -> HTTPException:
    if exc.permanent:
        return HTTPException(422, str(exc))
    return HTTPException(503, f"the annotation service is not reachable now ({exc}); try again later")


@router.get("", response_model=SearchOut)
async def search(
    params: Annotated[SearchParams, Depends()], user: CurrentUser, session: Session, ctx: Ctx,
    similar_to: Annotated[DbId | None, Query(description="kNN: assets visually similar to this asset.")] = None,
    box: Annotated[SafeStr | None, Query(max_length=200,
                                         description="With similar_to: a region x_min,y_min,x_max,y_max (0-1); "
                                                     "its embedding is computed on the fly.")] = None,
) -> SearchOut:
    query = await params.to_query(user, session)
    mode = "text" if query.q else "browse"
    if box is not None and similar_to is None:
        raise HTTPException(422, "`box` needs `similar_to` (the asset the region belongs to)")
    if similar_to is not None:
        asset = await session.get(Asset, similar_to)
        if asset is None or asset.deleted_at is not None or not can_see(asset, user):
            raise HTTPException(404, "asset not found")
        if box is not None:
            region = parse_box(box)
            if asset.kind != "image":
                raise HTTPException(422, "region search needs an image asset")
            query.vector_model, query.vector = await region_vector(ctx, session, asset, region)
            mode = "region"
        else:
            query.vector_model, query.vector = await asset_vector(session, asset)
            query.exclude_ids = [asset.id]
            mode = "knn"
        _check_dim(ctx, query.vector)
    return await run_search(ctx, session, query, mode)


def _check_dim(ctx: Ctx, vector: list[float]) -> None:
    if len(vector) != ctx.settings.dam.embedding_dim:
        raise HTTPException(409, f"the annotation service gave a {len(vector)}-d embedding; this DAM indexes "
                                 f"{ctx.settings.dam.embedding_dim}-d ones (MAAM_DAM__EMBEDDING_DIM)")


@router.post("/similar", response_model=SearchOut, max_body_size=MAX_SIMILAR_UPLOAD + MULTIPART_SLACK)
async def similar_to_image(
    image: UploadFile, params: Annotated[SearchParams, Depends()], user: CurrentUser, session: Session, ctx: Ctx,
) -> SearchOut:
    """kNN over assets similar to an uploaded image (not stored), combinable with text and filters."""
    data = await image.read(MAX_SIMILAR_UPLOAD + 1)
    if len(data) > MAX_SIMILAR_UPLOAD:
        raise HTTPException(413, f"the query image is larger than {MAX_SIMILAR_UPLOAD // 2**20} MiB")
    try:
        await asyncio.to_thread(open_image, data)
    except MediaError as exc:
        raise HTTPException(422, str(exc)) from exc
    query = await params.to_query(user, session)
    try:
        query.vector_model, query.vector = await ctx.client.image_embedding(data)
    except AnnotationServiceError as exc:
        raise _service_error(exc) from exc
    _check_dim(ctx, query.vector)
    return await run_search(ctx, session, query, "image")
