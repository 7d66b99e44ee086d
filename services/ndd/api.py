"""The NDD REST API (under /api/v1), shaped like MediaVerse's: collections, indexing jobs
(`images/jobs`, `videos/jobs`, `GET /jobs/{id}`), search by indexed id, URL or upload
(`images/search/{id}?t_sim=&t_rank=&collection_id=`), `images/indices/{id}` DELETE and listings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from services.common.fetch import FetchError, ForbiddenURLError, TooLargeError, check_url, fetch_url
from services.common.logging import RequestIdMiddleware
from services.common.media import MediaError, decode_image, media_kind, sniff_media_type
from services.common.metrics import ServiceMetrics, add_metrics
from services.common.settings import Settings, get_settings
from services.ndd import video
from services.ndd.descriptors import deep, offline
from services.ndd.engine import (
    DEFAULT_COLLECTION,
    IMAGE,
    IMAGE_DESCRIPTORS,
    VIDEO,
    Engine,
    ImageQuery,
    Match,
    MissingDescriptorError,
    UnknownItemError,
)
from services.ndd.jobs import Job, JobItem, JobManager, QueueFullError
from services.ndd.metrics import Metrics
from services.ndd.settings import NddSettings, get_ndd_settings
from services.ndd.store import DuplicateError, UnknownCollectionError

Descriptor = Literal["offline", "deep"]
TSim = Annotated[float, Query(ge=0.0, le=1.0, description="similarity threshold: calibrated score in [0, 1]")]
TRank = Annotated[int, Query(ge=1, le=1000, description="maximum number of results")]
CollectionQ = Annotated[str, Query(min_length=1, max_length=200)]


class NddState:
    def __init__(self, settings: Settings, ndd: NddSettings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.ndd = ndd
        self.engine = Engine(settings.data_dir / "ndd", ndd)
        self.metrics = metrics or Metrics()
        self.embedder: deep.AnnotationEmbedder | None = None
        if ndd.annotation_url:
            self.embedder = deep.AnnotationEmbedder(ndd.annotation_url, ndd.annotation_model, ndd.annotation_timeout_s)
        self.jobs = JobManager(self._index_item, self._job_done, ndd.job_queue_size, ndd.jobs_kept)

    # ------------------------------------------------------------------------- job handlers
    async def _index_item(self, job: Job, item: JobItem) -> list[str]:
        data = item.data if item.data is not None else await fetch_url(item.url or "", self.settings.media)
        warnings: list[str] = []
        if job.kind == IMAGE:
            rgb = await asyncio.to_thread(decode_image_checked, data, self.settings.media.max_image_pixels)
            vector = None
            if self.embedder is not None:
                try:
                    vector = await self.embedder.embed(data)
                except (deep.DescriptorUnavailableError, deep.DeepInputError) as exc:
                    warnings.append(f"indexed without the deep descriptor: {exc}")
            meta = {"url": item.url} if item.url else {"filename": item.filename}
            await asyncio.to_thread(self.engine.add_image, job.collection_id, item.item_id, rgb, vector, meta)
        else:
            features = await asyncio.to_thread(self.video_features, data)
            meta = {"url": item.url} if item.url else {"filename": item.filename}
            await asyncio.to_thread(self.engine.add_video, job.collection_id, item.item_id, features, meta)
        self.metrics.items_indexed.labels(job.kind).inc()
        return warnings

    async def _job_done(self, job: Job) -> None:
        if job.errors:
            self.metrics.item_errors.labels(job.kind).inc(len(job.errors))
        await asyncio.to_thread(self.engine.persist, job.collection_id)

    def video_features(self, data: bytes) -> video.VideoFeatures:
        kind = media_kind(sniff_media_type(data))
        if kind not in (VIDEO, None):
            raise MediaError(f"expected a video, got an {kind}")
        return video.extract(data, self.ndd.video_frame_interval_s, self.ndd.shot_cut_threshold,
                             self.ndd.max_video_frames)


def decode_image_checked(data: bytes, max_pixels: int) -> Any:
    kind = media_kind(sniff_media_type(data))
    if kind == VIDEO:
        raise MediaError("expected an image, got a video (index it with /videos/jobs)")
    return decode_image(data, max_pixels)


def _state(request: Request) -> NddState:
    return request.app.state.ndd


StateDep = Annotated[NddState, Depends(_state)]


# ------------------------------------------------------------------------------- schemas
class CollectionIn(BaseModel):
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = ""


class UrlItem(BaseModel):
    id: str = Field(min_length=1, max_length=500, description="the caller's id of the item")
    url: str = Field(min_length=1, max_length=4096)


class JobIn(BaseModel):
    collection_id: str = DEFAULT_COLLECTION
    items: list[UrlItem] = Field(min_length=1)


class UrlSearchIn(BaseModel):
    url: str = Field(min_length=1, max_length=4096)
    collection_id: str = DEFAULT_COLLECTION
    t_sim: float = Field(0.5, ge=0.0, le=1.0)
    t_rank: int = Field(10, ge=1, le=1000)
    descriptor: Descriptor = "offline"


# ------------------------------------------------------------------------------- helpers
def _http_error(exc: Exception) -> HTTPException:
    if isinstance(exc, UnknownCollectionError | UnknownItemError):
        return HTTPException(404, str(exc.args[0]) if exc.args else str(exc))
    if isinstance(exc, ForbiddenURLError):
        return HTTPException(400, str(exc))
    if isinstance(exc, TooLargeError):
        return HTTPException(413, str(exc))
    if isinstance(exc, FetchError):
        return HTTPException(422, str(exc))
    if isinstance(exc, MediaError | deep.DeepInputError):
        return HTTPException(422, str(exc))
    if isinstance(exc, MissingDescriptorError):
        return HTTPException(409, str(exc.args[0]) if exc.args else str(exc))
    if isinstance(exc, deep.DescriptorUnavailableError):
        return HTTPException(503, str(exc))
    if isinstance(exc, DuplicateError):
        return HTTPException(409, str(exc))
    if isinstance(exc, QueueFullError):
        return HTTPException(503, str(exc))
    raise exc


async def _read_upload(state: NddState, upload: UploadFile) -> bytes:
    limit = state.ndd.max_upload_mb * 1024 * 1024
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{upload.filename or 'the upload'} is over the {state.ndd.max_upload_mb} MB limit")
    if not data:
        raise HTTPException(422, f"{upload.filename or 'the upload'} is empty (0 bytes)")
    return data


def _require_collection(state: NddState, collection_id: str) -> None:
    try:
        state.engine.store.require_collection(collection_id)
    except UnknownCollectionError as exc:
        raise _http_error(exc) from exc


def _match_json(match: Match) -> dict[str, Any]:
    out: dict[str, Any] = {"id": match.item.item_id, "score": match.score, "meta": match.item.meta}
    if match.item.media_type == VIDEO:
        out["segments"] = [vars(s) for s in match.segments]
    return out


def _search_json(media: str, collection_id: str, descriptor: str, t_sim: float, t_rank: int,
                 matches: list[Match], query: dict[str, Any]) -> dict[str, Any]:
    return {"media_type": media, "collection_id": collection_id, "descriptor": descriptor, "t_sim": t_sim,
            "t_rank": t_rank, "query": query, "results": [_match_json(m) for m in matches]}


def _job_accepted(job: Job) -> JSONResponse:
    return JSONResponse(job.to_json() | {"status_url": f"/api/v1/jobs/{job.id}"}, status_code=202)


async def _image_query(state: NddState, data: bytes, descriptor: str) -> ImageQuery:
    try:
        rgb = await asyncio.to_thread(decode_image_checked, data, state.settings.media.max_image_pixels)
        if descriptor == offline.NAME:
            prepared = await asyncio.to_thread(offline.prepare_query, rgb)
            return ImageQuery(descriptor, prepared.vectors, prepared)
        if state.embedder is None:
            deep.AnnotationEmbedder("")  # raises the "not configured" error
        assert state.embedder is not None
        vector = await state.embedder.embed(data)
        return ImageQuery(descriptor, vector[None, :])
    except (MediaError, deep.DescriptorUnavailableError, deep.DeepInputError) as exc:
        raise _http_error(exc) from exc


async def _fetch(state: NddState, url: str) -> bytes:
    try:
        return await fetch_url(url, state.settings.media)
    except FetchError as exc:
        raise _http_error(exc) from exc


# -------------------------------------------------------------------------------- routes
router = APIRouter(prefix="/api/v1")


@router.post("/collections", status_code=201, tags=["collections"])
async def create_collection(state: StateDep, body: CollectionIn) -> dict[str, Any]:
    try:
        return state.engine.store.create_collection(body.id, body.name or body.id)
    except DuplicateError as exc:
        raise _http_error(exc) from exc


@router.get("/collections", tags=["collections"])
async def list_collections(state: StateDep) -> dict[str, Any]:
    return {"collections": state.engine.store.list_collections()}


@router.get("/collections/{collection_id}", tags=["collections"])
async def get_collection(state: StateDep, collection_id: str) -> dict[str, Any]:
    _require_collection(state, collection_id)
    found = next(c for c in state.engine.store.list_collections() if c["id"] == collection_id)
    return found | {"indexes": await asyncio.to_thread(state.engine.index_stats, collection_id)}


@router.delete("/collections/{collection_id}", status_code=204, tags=["collections"])
async def delete_collection(state: StateDep, collection_id: str) -> Response:
    try:
        await asyncio.to_thread(state.engine.delete_collection, collection_id)
    except UnknownCollectionError as exc:
        raise _http_error(exc) from exc
    return Response(status_code=204)


@router.get("/jobs/{job_id}", tags=["jobs"])
async def get_job(state: StateDep, job_id: str) -> dict[str, Any]:
    job = state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id!r} does not exist (jobs are kept in memory until a restart)")
    return job.to_json()


def _media_routes(media: str) -> None:
    plural = f"{media}s"

    @router.post(f"/{plural}/jobs", status_code=202, tags=[plural], name=f"index_{plural}_by_url")
    async def submit_urls(state: StateDep, body: JobIn) -> JSONResponse:
        _require_collection(state, body.collection_id)
        if len(body.items) > state.ndd.max_items_per_job:
            raise HTTPException(413, f"at most {state.ndd.max_items_per_job} items per job")
        for item in body.items:  # refuse forbidden URLs at once; fetch failures show in the job
            try:
                await check_url(item.url, state.settings.media.allow_private_urls)
            except FetchError as exc:
                raise HTTPException(400, f"item {item.id!r}: {exc}") from exc
        try:
            job = state.jobs.submit(media, body.collection_id, [JobItem(i.id, url=i.url) for i in body.items])
        except QueueFullError as exc:
            raise _http_error(exc) from exc
        state.metrics.jobs_waiting.set(state.jobs.waiting)
        return _job_accepted(job)

    @router.post(f"/{plural}/jobs/upload", status_code=202, tags=[plural], name=f"index_{plural}_by_upload")
    async def submit_uploads(
        state: StateDep,
        files: Annotated[list[UploadFile], File(description="the media files")],
        ids: Annotated[list[str], Form(description="the caller's id of each file, in order")],
        collection_id: Annotated[str, Form()] = DEFAULT_COLLECTION,
    ) -> JSONResponse:
        _require_collection(state, collection_id)
        if len(ids) != len(files):
            raise HTTPException(422, f"{len(files)} files but {len(ids)} ids: give one id per file")
        if len(files) > state.ndd.max_items_per_job:
            raise HTTPException(413, f"at most {state.ndd.max_items_per_job} items per job")
        items = [JobItem(i, data=await _read_upload(state, f), filename=f.filename)
                 for i, f in zip(ids, files, strict=True)]
        try:
            job = state.jobs.submit(media, collection_id, items)
        except QueueFullError as exc:
            raise _http_error(exc) from exc
        state.metrics.jobs_waiting.set(state.jobs.waiting)
        return _job_accepted(job)

    @router.get(f"/{plural}", tags=[plural], name=f"list_{plural}")
    async def list_items(
        state: StateDep,
        collection_id: CollectionQ = DEFAULT_COLLECTION,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        _require_collection(state, collection_id)
        items, total = state.engine.store.list_items(collection_id, media, offset, limit)
        return {"collection_id": collection_id, "total": total, "offset": offset, "items": [
            {"id": i.item_id, "meta": i.meta, "created": i.created,
             "descriptors": [d for d in i.descriptors if d in IMAGE_DESCRIPTORS]}
            for i in items]}

    @router.delete(f"/{plural}/indices/{{item_id}}", tags=[plural], name=f"delete_{media}")
    async def delete_item(state: StateDep, item_id: str, collection_id: CollectionQ = DEFAULT_COLLECTION
                          ) -> dict[str, Any]:
        try:
            await asyncio.to_thread(state.engine.delete_item, collection_id, media, item_id)
        except (UnknownCollectionError, UnknownItemError) as exc:
            raise _http_error(exc) from exc
        return {"deleted": item_id, "collection_id": collection_id}


_media_routes(IMAGE)
_media_routes(VIDEO)


async def _run_image_search(state: StateDep, collection_id: str, query: ImageQuery, t_sim: float, t_rank: int,
                            exclude: int | None, described: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        matches = await asyncio.to_thread(state.engine.search_images, collection_id, query, t_sim, t_rank, exclude)
    except (UnknownCollectionError, MissingDescriptorError) as exc:
        raise _http_error(exc) from exc
    state.metrics.searches.labels(IMAGE, query.descriptor).inc()
    state.metrics.search_seconds.labels(IMAGE).observe(time.perf_counter() - started)
    return _search_json(IMAGE, collection_id, query.descriptor, t_sim, t_rank, matches, described)


@router.get("/images/search/{item_id}", tags=["images"])
async def search_image_by_id(state: StateDep, item_id: str, collection_id: CollectionQ = DEFAULT_COLLECTION,
                             t_sim: TSim = 0.5, t_rank: TRank = 10, descriptor: Descriptor = "offline"
                             ) -> dict[str, Any]:
    try:
        query, rowid = await asyncio.to_thread(state.engine.image_query_of_item, collection_id, item_id, descriptor)
    except (UnknownCollectionError, UnknownItemError, MissingDescriptorError) as exc:
        raise _http_error(exc) from exc
    return await _run_image_search(state, collection_id, query, t_sim, t_rank, rowid, {"id": item_id})


@router.post("/images/search", tags=["images"])
async def search_image_by_url(state: StateDep, body: UrlSearchIn) -> dict[str, Any]:
    _require_collection(state, body.collection_id)
    query = await _image_query(state, await _fetch(state, body.url), body.descriptor)
    return await _run_image_search(state, body.collection_id, query, body.t_sim, body.t_rank, None,
                                   {"url": body.url})


@router.post("/images/search/upload", tags=["images"])
async def search_image_by_upload(state: StateDep, file: Annotated[UploadFile, File()],
                                 collection_id: CollectionQ = DEFAULT_COLLECTION, t_sim: TSim = 0.5,
                                 t_rank: TRank = 10, descriptor: Descriptor = "offline") -> dict[str, Any]:
    _require_collection(state, collection_id)
    query = await _image_query(state, await _read_upload(state, file), descriptor)
    return await _run_image_search(state, collection_id, query, t_sim, t_rank, None, {"filename": file.filename})


async def _run_video_search(state: StateDep, collection_id: str, query: video.VideoFeatures, t_sim: float,
                            t_rank: int, exclude: int | None, described: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        matches = await asyncio.to_thread(state.engine.search_videos, collection_id, query, t_sim, t_rank, exclude)
    except UnknownCollectionError as exc:
        raise _http_error(exc) from exc
    state.metrics.searches.labels(VIDEO, offline.NAME).inc()
    state.metrics.search_seconds.labels(VIDEO).observe(time.perf_counter() - started)
    described |= {"duration": round(query.duration, 3), "frames": len(query.times)}
    return _search_json(VIDEO, collection_id, offline.NAME, t_sim, t_rank, matches, described)


async def _video_query(state: NddState, data: bytes) -> video.VideoFeatures:
    try:
        return await asyncio.to_thread(state.video_features, data)
    except MediaError as exc:
        raise _http_error(exc) from exc


@router.get("/videos/search/{item_id}", tags=["videos"])
async def search_video_by_id(state: StateDep, item_id: str, collection_id: CollectionQ = DEFAULT_COLLECTION,
                             t_sim: TSim = 0.5, t_rank: TRank = 10) -> dict[str, Any]:
    try:
        query, rowid = await asyncio.to_thread(state.engine.video_query_of_item, collection_id, item_id)
    except (UnknownCollectionError, UnknownItemError) as exc:
        raise _http_error(exc) from exc
    return await _run_video_search(state, collection_id, query, t_sim, t_rank, rowid, {"id": item_id})


@router.post("/videos/search", tags=["videos"])
async def search_video_by_url(state: StateDep, body: UrlSearchIn) -> dict[str, Any]:
    _require_collection(state, body.collection_id)
    if body.descriptor != offline.NAME:
        raise HTTPException(422, "videos are searched with the offline descriptor only")
    query = await _video_query(state, await _fetch(state, body.url))
    return await _run_video_search(state, body.collection_id, query, body.t_sim, body.t_rank, None, {"url": body.url})


@router.post("/videos/search/upload", tags=["videos"])
async def search_video_by_upload(state: StateDep, file: Annotated[UploadFile, File()],
                                 collection_id: CollectionQ = DEFAULT_COLLECTION, t_sim: TSim = 0.5,
                                 t_rank: TRank = 10) -> dict[str, Any]:
    _require_collection(state, collection_id)
    query = await _video_query(state, await _read_upload(state, file))
    return await _run_video_search(state, collection_id, query, t_sim, t_rank, None, {"filename": file.filename})


def create_app(settings: Settings | None = None, ndd: NddSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    ndd = ndd or get_ndd_settings()
    # One registry per app: the shared request/latency/queue metrics and the NDD's own counters.
    service_metrics = ServiceMetrics("ndd")
    ndd_metrics = Metrics(service_metrics.registry)  # made once: an app may start more than once in tests

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = NddState(settings, ndd, ndd_metrics)
        app.state.ndd = state
        service_metrics.track_queue("ndd_jobs", lambda: state.jobs.waiting)
        state.jobs.start()
        try:
            yield
        finally:
            await state.jobs.stop(ndd.shutdown_grace_s)
            if state.embedder is not None:
                await state.embedder.close()
            state.engine.close()

    app = FastAPI(title="MAAM near-duplicate detection", version="1.0", lifespan=lifespan,
                  description="Index images and videos in collections and find their near-duplicates.")
    app.state.metrics = service_metrics
    app.include_router(router)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> dict[str, Any]:
        state: NddState = request.app.state.ndd
        return {"status": "ok", "jobs_waiting": state.jobs.waiting,
                "deep_descriptor": "configured" if state.embedder else "not configured"}

    @app.get("/metrics", tags=["health"])
    async def metrics(request: Request) -> Response:
        state: NddState = request.app.state.ndd
        state.metrics.jobs_waiting.set(state.jobs.waiting)
        return Response(generate_latest(service_metrics.registry), media_type=CONTENT_TYPE_LATEST)

    add_metrics(app, service_metrics, route=False)  # the route above serves the same registry
    app.add_middleware(RequestIdMiddleware)  # outermost: the id is bound for everything below
    return app
