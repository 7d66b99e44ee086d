"""The original MediaVerse CMRR routes (`/mv_retrieval/v0.1/...`: raw bodies, query parameters), with their
bodies as the original answers them."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.cmrr.api.deps import BODY_DOC, Body, ContentId, K, Modality, Service, Space, User, describe
from services.cmrr.service import Ranked

router = APIRouter(tags=["original"])


@router.post("/add_content", openapi_extra=BODY_DOC)
async def add_content(service: Service, user: User, content_id: ContentId, modality: Modality, body: Body) -> dict:
    """Encodes the body and stores it. The same content added again by the same user under another id is
    stored once; the id joins its id list and results name the most recent id. An id re-sent with other
    content moves to that content."""
    start = time.perf_counter()
    change = await service.add(user, content_id, modality, body)
    assert change.entry is not None
    if change.status == "exists":
        msg = f"Content {content_id} was already added by user {user}; nothing changed"
    else:
        msg = f"Content {content_id} successfully added to the indexer by user {user}"
    return {"msg": msg, "time": time.perf_counter() - start, "status": change.status, "ids": change.entry.ids}


@router.post("/retrieve_contents", openapi_extra=BODY_DOC)
async def retrieve_contents(service: Service, response: Response, user: User, modality: Modality, k: K,
                            body: Body, space: Space = None) -> dict:
    """The k contents of each type most similar to the query (the body), excluding the user's own, most
    similar first, with cosine similarity scores; a type with no contents but the user's own answers the
    original's sentence instead. Headers: the space searched, notes."""
    results, notes, searched = await service.retrieve(user, modality, body, min(k, service.cmrr.max_k), space)
    describe(response, notes, {modality: searched})
    return {m: r.to_json() if isinstance(r, Ranked) else r for m, r in results.items()}


@router.post("/recommend_contents")
async def recommend_contents(
    service: Service,
    response: Response,
    user: User,
    k: K,
    seed: Annotated[int | None, Query(ge=0, le=2**32 - 1, description="Fixes the novelty draw.")] = None,
    novelty: Annotated[float | None, Query(ge=0, lt=1, description="Share of k from outlier posts.")] = None,
) -> dict:
    """New content of other users from the user's areas of interest: input type -> output type -> ranked
    contents and scores. Empty lists (and a note) when the user has no posts of a type."""
    out, notes, spaces = await service.recommend(user, min(k, service.cmrr.max_k), novelty, seed)
    describe(response, notes, spaces)
    return {src: {dst: r.to_json() for dst, r in row.items()} for src, row in out.items()}
