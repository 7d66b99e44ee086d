"""Shared request dependencies of the NDD routes: the service, checked parameters, upload reading."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.common.fetch import FetchError, check_url, fetch_url
from services.ndd.engine import DEFAULT_COLLECTION
from services.ndd.jobs import NewItem
from services.ndd.service import NddService

# Ids are bounded where they are created; the same bounds apply wherever they are named.
COLLECTION_ID_MAX = 200
ITEM_ID_MAX = 500
SQLITE_INT_MAX = 2**63 - 1
URL_MAX = 4096

Descriptor = Literal["offline", "deep"]
TSim = Annotated[float, Query(ge=0.0, le=1.0, description="similarity threshold: calibrated score in [0, 1]")]
TRank = Annotated[int, Query(ge=1, le=1000, description="maximum number of results")]
CollectionQ = Annotated[str, Query(min_length=1, max_length=COLLECTION_ID_MAX)]
FromCollectionQ = Annotated[str | None, Query(min_length=1, max_length=COLLECTION_ID_MAX,
                                              description="where the query item is indexed (default: collection_id)")]
ItemId = Annotated[str, Path(min_length=1, max_length=ITEM_ID_MAX, description="the caller's id of the item")]
Offset = Annotated[int, Query(ge=0, le=SQLITE_INT_MAX)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def get_service(request: Request) -> NddService:
    return request.app.state.ndd


Service = Annotated[NddService, Depends(get_service)]


class CollectionIn(BaseModel):
    id: str = Field(min_length=1, max_length=COLLECTION_ID_MAX, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = Field("", max_length=1000)


class UrlItem(BaseModel):
    id: str = Field(min_length=1, max_length=ITEM_ID_MAX, description="the caller's id of the item")
    url: str = Field(min_length=1, max_length=URL_MAX)


class JobIn(BaseModel):
    collection_id: str = Field(DEFAULT_COLLECTION, min_length=1, max_length=COLLECTION_ID_MAX)
    items: list[UrlItem] = Field(min_length=1)


class UrlSearchIn(BaseModel):
    url: str = Field(min_length=1, max_length=URL_MAX)
    collection_id: str = Field(DEFAULT_COLLECTION, min_length=1, max_length=COLLECTION_ID_MAX)
    t_sim: float = Field(0.5, ge=0.0, le=1.0)
    t_rank: int = Field(10, ge=1, le=1000)
    descriptor: Descriptor = "offline"


def accepted(report: dict[str, Any]) -> JSONResponse:
    """202 with the job's report and where to follow it."""
    return JSONResponse(report | {"status_url": f"/api/v1/jobs/{report['job_id']}"}, status_code=202)


async def read_upload(service: NddService, upload: UploadFile) -> bytes:
    limit = service.ndd.max_upload_mb * 1024 * 1024
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{upload.filename or 'the upload'} is over the {service.ndd.max_upload_mb} MB limit")
    if not data:
        raise HTTPException(422, f"{upload.filename or 'the upload'} is empty (0 bytes)")
    return data


async def url_items(service: NddService, body: JobIn) -> list[NewItem]:
    """The job's items; forbidden URLs are refused at once, fetch failures show in the job report."""
    if len(body.items) > service.ndd.max_items_per_job:
        raise HTTPException(413, f"at most {service.ndd.max_items_per_job} items per job")
    for item in body.items:
        try:
            await check_url(item.url, service.settings.media.allow_private_urls)
        except FetchError as exc:
            raise HTTPException(400, f"item {item.id!r}: {exc}") from exc
    return [NewItem(i.id, url=i.url) for i in body.items]


async def upload_items(service: NddService, files: list[UploadFile], ids: list[str]) -> list[NewItem]:
    if len(ids) != len(files):
        raise HTTPException(422, f"{len(files)} files but {len(ids)} ids: give one id per file")
    if len(files) > service.ndd.max_items_per_job:
        raise HTTPException(413, f"at most {service.ndd.max_items_per_job} items per job")
    if any(not 0 < len(i) <= ITEM_ID_MAX for i in ids):
        raise HTTPException(422, f"every id needs 1 to {ITEM_ID_MAX} characters")
    return [NewItem(i, data=await read_upload(service, f), filename=f.filename)
            for i, f in zip(ids, files, strict=True)]


async def fetch(service: NddService, url: str) -> bytes:
    return await fetch_url(url, service.settings.media)
