"""GET /api/search (text, filters, facets; kNN similar to an asset, a region or a text) and POST
/api/search/similar (kNN similar to an uploaded image). Every kNN runs in one embedding space and says which."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, UploadFile
from sqlalchemy import select

from services.common.media import MediaError, open_image
from services.dam import metrics
from services.dam.api import query_vectors
from services.dam.api.deps import Ctx, CurrentUser, Session, can_see
from services.dam.api.validation import MULTIPART_SLACK, BoundedDate, DbId, PageNumber, SafeStr, check_db_id
from services.dam.models import Asset, Project, User
from services.dam.people.documents import people_facet, person_label
from services.dam.people.ops import NotFound, get_person
from services.dam.schemas import AssetOut, SearchHitOut, SearchOut
from services.dam.search.base import (
    MAX_KNN_WINDOW,
    MAX_PAGE_SIZE,
    MAX_QUERY_CHARS,
    MAX_RESULT_WINDOW,
    QueryError,
    SearchQuery,
    Tri,
)

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
        annotation: Annotated[list[SafeStr] | None, Query(description="Annotation types (tasks, e.g. ocr, "
                                                          "face_recognition); all must be present.")] = None,
        text: Annotated[bool | None, Query(description="Text was read in it by OCR (true) or not (false).")
                        ] = None,
        nsfw: Tri = "include",
        disturbing: Tri = "include",
        meme: Tri = "include",
        uploaded_from: BoundedDate | None = None,
        uploaded_to: Annotated[BoundedDate | None, Query(description="Inclusive.")] = None,
        owner: Annotated[SafeStr | None, Query(description="A user id or `me`.", pattern=r"^(me|[0-9]{1,19})$")
                         ] = None,
        project: DbId | None = None,
        person: Annotated[DbId | None, Query(description="Assets showing this person (GET /api/people).")] = None,
        min_score: Annotated[float | None, Query(ge=-1, le=1, allow_inf_nan=False)] = None,
        page: Annotated[PageNumber, Query(description=(
            f"page x size may reach hit {MAX_RESULT_WINDOW} ({MAX_KNN_WINDOW} for a kNN); deeper: narrow the "
            "search"))] = 1,
        size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
        facets: bool = True,
    ) -> None:
        if q is not None and len(q) > MAX_QUERY_CHARS:
            raise HTTPException(422, f"the query is longer than {MAX_QUERY_CHARS} characters")
        for values, name in ((type, "type"), (objects, "objects"), (label, "label"), (annotation, "annotation")):
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
        self.annotations, self.has_text = annotation or [], text
        utc = timezone.utc  # noqa: UP017 - explicit for readers
        self.uploaded_from = datetime.combine(uploaded_from, dtime.min, utc) if uploaded_from else None
        self.uploaded_to = datetime.combine(uploaded_to + timedelta(days=1), dtime.min, utc) if uploaded_to else None
        self.owner, self.project, self.min_score = owner, project, min_score
        self.person = person
        self.page, self.size, self.facets = page, size, facets

    async def to_query(self, user: User, session: Session) -> SearchQuery:
        if self.project is not None:
            project = await session.get(Project, self.project)
            if project is None or not can_see(project, user):
                raise HTTPException(404, "project not found")
        labels = list(self.labels)
        if self.person is not None:
            try:
                await get_person(session, user, self.person)
            except NotFound as exc:
                raise HTTPException(404, "person not found") from exc
            labels.append(person_label(self.person))
        return SearchQuery(
            viewer_id=user.id, is_admin=user.is_admin, q=self.q, kinds=self.kinds, objects=self.objects,
            labels=labels, faces=self.faces, nsfw=self.nsfw, disturbing=self.disturbing, meme=self.meme,
            uploaded_from=self.uploaded_from, uploaded_to=self.uploaded_to,
            owner_id=user.id if self.owner == "me" else (int(self.owner) if self.owner else None),
            project_id=self.project, min_score=self.min_score, page=self.page, size=self.size, facets=self.facets,
            annotations=self.annotations, has_text=self.has_text,
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
    return x0, y0, x1, y1


async def run_search(ctx: Ctx, session: Session, query: SearchQuery, mode: str) -> SearchOut:
    started = time.perf_counter()
    try:
        result = await ctx.backend.search(query, session)
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from exc
    metrics.SEARCH_LATENCY.labels(mode).observe(time.perf_counter() - started)
    ids = [h.asset_id for h in result.hits]
    assets = {a.id: a for a in (await session.execute(
        select(Asset).where(Asset.id.in_(ids), Asset.deleted_at.is_(None)))).scalars()}
    hits = [SearchHitOut(asset=AssetOut.model_validate(assets[h.asset_id]), score=h.score, highlights=h.highlights)
            for h in result.hits if h.asset_id in assets]
    return SearchOut(total=result.total, total_relation=result.total_relation, page=query.page, size=query.size,
                     hits=hits, facets=people_facet(result.facets), space=result.space)


@router.get("", response_model=SearchOut)
async def search(
    params: Annotated[SearchParams, Depends()], user: CurrentUser, session: Session, ctx: Ctx,
    similar_to: Annotated[DbId | None, Query(description="kNN: assets visually similar to this asset.")] = None,
    box: Annotated[SafeStr | None, Query(max_length=200,
                                         description="With similar_to: a region x_min,y_min,x_max,y_max (0-1); "
                                                     "its embedding is computed on the fly.")] = None,
    space: Annotated[SafeStr | None, Query(max_length=200, description=(
        "The embedding space (model) of a kNN; default: the asset's space that is configured first "
        "(MAAM_DAM__EMBEDDING_SPACES), else a whole-image model's space covering most assets."))] = None,
    semantic: Annotated[bool, Query(description=(
        "With q: rank images by what q means, through a cross-modal (CLIP) space, instead of matching its "
        "words."))] = False,
) -> SearchOut:
    query = await params.to_query(user, session)
    mode = "text" if query.q else "browse"
    if box is not None and similar_to is None:
        raise HTTPException(422, "`box` needs `similar_to` (the asset the region belongs to)")
    if semantic and (query.q is None or similar_to is not None):
        raise HTTPException(422, "`semantic` needs `q` (the text to search by meaning) and no `similar_to`")
    if similar_to is not None:
        asset = await session.get(Asset, similar_to)
        if asset is None or asset.deleted_at is not None or not can_see(asset, user):
            raise HTTPException(404, "asset not found")
        if box is not None:
            region = parse_box(box)
            if asset.kind != "image":
                raise HTTPException(422, "region search needs an image asset")
            found = await query_vectors.of_region(ctx, session, asset, region, space)
            mode = "region"
        else:
            found = await query_vectors.of_asset(ctx, session, asset, space)
            query.exclude_ids = [asset.id]
            mode = "knn"
        query.vector_model, query.vector = found.space, found.values
    elif semantic:
        found = await query_vectors.of_text(ctx, session, query.q or "", space)
        query.vector_model, query.vector, query.q = found.space, found.values, None
        mode = "semantic"
    elif space is not None:
        raise HTTPException(422, "`space` applies to a kNN: give `similar_to`, `semantic=true` or an image")
    return await run_search(ctx, session, query, mode)


@router.post("/similar", response_model=SearchOut, max_body_size=MAX_SIMILAR_UPLOAD + MULTIPART_SLACK)
async def similar_to_image(
    image: UploadFile, params: Annotated[SearchParams, Depends()], user: CurrentUser, session: Session, ctx: Ctx,
    space: Annotated[SafeStr | None, Query(max_length=200, description="The embedding space to search in.")] = None,
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
    found = await query_vectors.of_image(ctx, session, data, space)
    query.vector_model, query.vector = found.space, found.values
    return await run_search(ctx, session, query, "image")
