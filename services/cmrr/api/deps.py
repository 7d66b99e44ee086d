"""Shared request dependencies of the CMRR routes: the service, the original's query parameters, the raw body,
and the response headers that carry what the original's bodies have no room for."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Query, Request, Response

from services.cmrr.service import CmrrService
from services.common.http_errors import ApiError

User = Annotated[str, Query(min_length=1, max_length=256, description="The user who posts or asks.")]
Modality = Annotated[str, Query(alias="type", description="'text' or 'image': what the raw body holds.")]
K = Annotated[int, Query(gt=0, le=2**31 - 1, description="How many results per output modality.")]
ContentId = Annotated[str, Query(alias="id", min_length=1, max_length=256, description="MediaVerse id.")]
Space = Annotated[str | None, Query(max_length=256, description="Search this embedding space (default: the "
                                                               "preferred space that encodes the query's type).")]

# Notes (fewer results than asked, a missing encoder) and the embedding space searched travel as headers: the
# original's clients read every top-level key of the body as a content type. JSON, ASCII only.
NOTES_HEADER = "X-MAAM-Notes"
SPACES_HEADER = "X-MAAM-Spaces"

BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "The content itself: UTF-8 text, or image bytes (JPEG, PNG, WebP, ...).",
    }
}


def get_service(request: Request) -> CmrrService:
    return request.app.state.service


Service = Annotated[CmrrService, Depends(get_service)]


async def read_body(service: Service, request: Request) -> bytes:
    limit = int(service.cmrr.max_body_mb * 1024 * 1024)
    too_large = ApiError(f"the body is larger than {limit // (1024 * 1024)} MiB (MAAM_CMRR_MAX_BODY_MB)", 413)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


Body = Annotated[bytes, Depends(read_body)]


def describe(response: Response, notes: list[str], spaces: dict[str, str]) -> None:
    response.headers[NOTES_HEADER] = json.dumps(notes)
    response.headers[SPACES_HEADER] = json.dumps(spaces)
