"""Collections: create, list (with item counts), show (with index sizes and kinds), delete."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response

from services.ndd.api.deps import CollectionIn, Service

router = APIRouter(prefix="/collections", tags=["collections"])


@router.post("", status_code=201)
async def create_collection(service: Service, body: CollectionIn) -> dict[str, Any]:
    return service.engine.store.create_collection(body.id, body.name or body.id)


@router.get("")
async def list_collections(service: Service) -> dict[str, Any]:
    return {"collections": service.engine.store.list_collections()}


@router.get("/{collection_id}")
async def get_collection(service: Service, collection_id: str) -> dict[str, Any]:
    service.engine.store.require_collection(collection_id)
    found = next(c for c in service.engine.store.list_collections() if c["id"] == collection_id)
    return found | {"indexes": await asyncio.to_thread(service.engine.index_stats, collection_id)}


@router.delete("/{collection_id}", status_code=204)
async def delete_collection(service: Service, collection_id: str) -> Response:
    await asyncio.to_thread(service.engine.delete_collection, collection_id)
    return Response(status_code=204)
