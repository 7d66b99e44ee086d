"""Signed blob links (services/dam/core/blob_links.py): the annotation service fetches a video or a large
image here, streamed from the blob store. The signature is the credential; nothing else is served."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from services.dam.api.deps import Ctx

router = APIRouter(prefix="/blobs", tags=["internal"])


@router.get("/{sha256}", include_in_schema=False)
async def signed_blob(sha256: str, ctx: Ctx, expires: Annotated[int, Query(ge=0, lt=2**63)],
                      signature: Annotated[str, Query(max_length=128)]) -> FileResponse:
    if not ctx.blob_links.verify(sha256, expires, signature):
        raise HTTPException(403, "the blob link is invalid or has expired")
    try:
        path = ctx.blobs.path(sha256)
    except ValueError as exc:
        raise HTTPException(404, "no such blob") from exc
    if not path.is_file():
        raise HTTPException(404, "no such blob; it may have been purged")
    return FileResponse(path, media_type="application/octet-stream")
