"""Images: index (by URL or upload), list, delete, and search by indexed id, URL or upload."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse

from services.ndd.api.deps import (
    CollectionQ,
    Descriptor,
    FromCollectionQ,
    ItemId,
    JobIn,
    Limit,
    Offset,
    Service,
    TRank,
    TSim,
    UrlSearchIn,
    accepted,
    fetch,
    read_upload,
    upload_items,
    url_items,
)
from services.ndd.engine import DEFAULT_COLLECTION, IMAGE

router = APIRouter(prefix="/images", tags=["images"])
# The routes that take files: their bodies get the larger cap (MAAM_NDD__MAX_BODY_MB, app.py).
uploads = APIRouter(prefix="/images", tags=["images"])


@router.post("/jobs", status_code=202, name="index_images_by_url")
async def index_by_url(service: Service, body: JobIn) -> JSONResponse:
    service.engine.store.require_collection(body.collection_id)
    return accepted(await service.submit(IMAGE, body.collection_id, await url_items(service, body)))


@uploads.post("/jobs/upload", status_code=202, name="index_images_by_upload")
async def index_by_upload(
    service: Service,
    files: Annotated[list[UploadFile], File(description="the media files")],
    ids: Annotated[list[str], Form(description="the caller's id of each file, in order")],
    collection_id: Annotated[str, Form(min_length=1, max_length=200)] = DEFAULT_COLLECTION,
) -> JSONResponse:
    service.engine.store.require_collection(collection_id)
    return accepted(await service.submit(IMAGE, collection_id, await upload_items(service, files, ids)))


@router.get("", name="list_images")
async def list_images(service: Service, collection_id: CollectionQ = DEFAULT_COLLECTION, offset: Offset = 0,
                      limit: Limit = 100) -> dict[str, Any]:
    service.engine.store.require_collection(collection_id)
    return service.list_items(IMAGE, collection_id, offset, limit)


@router.delete("/indices/{item_id}", name="delete_image")
async def delete_image(service: Service, item_id: ItemId, collection_id: CollectionQ = DEFAULT_COLLECTION
                       ) -> dict[str, Any]:
    await asyncio.to_thread(service.engine.delete_item, collection_id, IMAGE, item_id)
    return {"deleted": item_id, "collection_id": collection_id}


@router.get("/search/{item_id}")
async def search_by_id(service: Service, item_id: ItemId, collection_id: CollectionQ = DEFAULT_COLLECTION,
                       t_sim: TSim = 0.5, t_rank: TRank = 10, descriptor: Descriptor = "offline",
                       from_collection_id: FromCollectionQ = None) -> dict[str, Any]:
    """Near-duplicates in `collection_id` of an item indexed in `from_collection_id` (default: the same
    collection): its stored descriptors are the query, nothing is computed again."""
    source = from_collection_id or collection_id
    service.engine.store.require_collection(collection_id)
    query, rowid = await asyncio.to_thread(service.engine.image_query_of_item, source, item_id, descriptor)
    return await service.search_images(collection_id, query, t_sim, t_rank, rowid,
                                       {"id": item_id, "collection_id": source})


@router.post("/search")
async def search_by_url(service: Service, body: UrlSearchIn) -> dict[str, Any]:
    service.engine.store.require_collection(body.collection_id)
    query = await service.image_query(await fetch(service, body.url), body.descriptor)
    return await service.search_images(body.collection_id, query, body.t_sim, body.t_rank, None, {"url": body.url})


@uploads.post("/search/upload")
async def search_by_upload(service: Service, file: Annotated[UploadFile, File()],
                           collection_id: CollectionQ = DEFAULT_COLLECTION, t_sim: TSim = 0.5, t_rank: TRank = 10,
                           descriptor: Descriptor = "offline") -> dict[str, Any]:
    service.engine.store.require_collection(collection_id)
    query = await service.image_query(await read_upload(service, file), descriptor)
    return await service.search_images(collection_id, query, t_sim, t_rank, None, {"filename": file.filename})
