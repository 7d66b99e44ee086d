"""HTTP API, compatible with the original MediaVerse CMRR service (`/mv_retrieval/v0.1/...`, raw bodies, query
parameters), plus listing and deleting a user's content. Routes are thin: the work is in service.py."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from starlette.responses import Response

from services.cmrr.config import CmrrSettings, get_cmrr_settings
from services.cmrr.service import CmrrError, CmrrService, check_modality
from services.common.inference import (
    InferenceBackend,
    InferenceError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelUnavailableError,
    create_backend,
)
from services.common.logging import RequestIdMiddleware
from services.common.metrics import ServiceMetrics, add_metrics, instrument_backend
from services.common.model_repository import ModelNotFoundError, ModelRepository
from services.common.settings import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "/mv_retrieval/v0.1"

User = Annotated[str, Query(min_length=1, max_length=256, description="The user who posts or asks.")]
Modality = Annotated[str, Query(alias="type", description="'text' or 'image': what the raw body holds.")]
K = Annotated[int, Query(gt=0, description="How many results per output modality.")]

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


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "status": status}, status_code=status)


def create_app(
    settings: Settings | None = None,
    cmrr: CmrrSettings | None = None,
    repository: ModelRepository | None = None,
    backend: InferenceBackend | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    cmrr = cmrr or get_cmrr_settings()
    repository = repository or ModelRepository(settings.model_repository)
    # One registry per app: the shared request/latency/inference metrics and the CMRR's own counter.
    service_metrics = ServiceMetrics("cmrr")
    registry = service_metrics.registry
    requests = Counter("cmrr_requests", "CMRR requests by route and status", ["route", "status"], registry=registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_backend = backend is None
        active = instrument_backend(backend or create_backend(settings, repository), service_metrics)
        app.state.service = CmrrService(settings, cmrr, repository, active)
        await app.state.service.start()
        try:
            yield
        finally:
            await app.state.service.close()
            if own_backend:
                await active.close()

    app = FastAPI(
        title="MAAM cross-modal retrieval and recommendation",
        version="0.1",
        description="Add texts and images, retrieve the most similar content of any type, and get "
        "recommendations from a user's areas of interest (MediaVerse D3.3 section 4).",
        lifespan=lifespan,
    )

    def service(request: Request) -> CmrrService:
        return request.app.state.service

    async def read_body(request: Request) -> bytes:
        limit = int(cmrr.max_body_mb * 1024 * 1024)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _TooLarge(limit)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _TooLarge(limit)
        return bytes(body)

    @app.middleware("http")
    async def count(request: Request, call_next):
        try:
            response = await call_next(request)
        except Exception as exc:  # a bug, not bad input: still a JSON body, and the log has the traceback
            log.exception("unhandled error on %s", request.url.path)
            response = _error(500, f"internal error: {type(exc).__name__}: {exc}")
        requests.labels(request.url.path, str(response.status_code)).inc()
        return response

    @app.exception_handler(CmrrError)
    async def on_cmrr_error(_: Request, exc: CmrrError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(_TooLarge)
    async def on_too_large(_: Request, exc: _TooLarge) -> JSONResponse:
        return _error(413, f"the body is larger than {exc.limit // (1024 * 1024)} MiB (MAAM_CMRR__MAX_BODY_MB)")

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
            parts.append(f"{where}: {err.get('msg')}")
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(ModelNotFoundError)
    async def on_missing_model(_: Request, exc: ModelNotFoundError) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(InferenceError)
    async def on_inference(_: Request, exc: InferenceError) -> JSONResponse:
        if isinstance(exc, InvalidInputError):
            return _error(400, f"the content does not fit the encoder: {exc}")
        if isinstance(exc, ModelUnavailableError | InferenceTimeoutError):
            return _error(503, str(exc))
        return _error(502, f"the encoder failed: {exc}")

    @app.post(f"{PREFIX}/add_content", openapi_extra=BODY_DOC, tags=["original"])
    async def add_content(
        request: Request,
        user: User,
        content_id: Annotated[str, Query(alias="id", min_length=1, max_length=256, description="MediaVerse id.")],
        modality: Modality,
    ) -> dict:
        """Encodes the body and stores it. The same content added again by the same user under another id is
        stored once; the id joins its id list and results name the most recent id."""
        start = time.perf_counter()
        check_modality(modality)
        body = await read_body(request)
        result = await service(request).add(user, content_id, modality, body)
        if result.status == "added":
            msg = f"Content {content_id} successfully added to the indexer by user {user}"
        elif result.status == "duplicate":
            msg = (f"Content {content_id} is the same {modality} as {result.entry.ids[:-1]} of user {user}; "
                   f"stored once, ids now {result.entry.ids}")
        else:
            msg = f"Content {content_id} was already added by user {user}; nothing changed"
        return {"msg": msg, "time": time.perf_counter() - start, "status": result.status, "ids": result.entry.ids}

    @app.post(f"{PREFIX}/retrieve_contents", openapi_extra=BODY_DOC, tags=["original"])
    async def retrieve_contents(request: Request, user: User, modality: Modality, k: K) -> dict:
        """The k contents of each type most similar to the query (the body), excluding the user's own, most
        similar first, with cosine similarity scores."""
        check_modality(modality)
        svc = service(request)
        k = min(k, svc.cmrr.max_k)
        body = await read_body(request)
        results, notes = await svc.retrieve(user, modality, body, k)
        return {**{m: r.to_json() for m, r in results.items()}, "notes": notes}

    @app.post(f"{PREFIX}/recommend_contents", tags=["original"])
    async def recommend_contents(
        request: Request,
        user: User,
        k: K,
        seed: Annotated[int | None, Query(ge=0, description="Fixes the novelty draw: reproducible.")] = None,
        novelty: Annotated[float | None, Query(ge=0, lt=1, description="Share of k from outlier posts.")] = None,
    ) -> dict:
        """New content of other users from the user's areas of interest: input type -> output type -> ranked
        contents and scores. Empty lists (and a note) when the user has no posts of a type."""
        svc = service(request)
        out, notes = await svc.recommend(user, min(k, svc.cmrr.max_k), novelty, seed)
        return {**{src: {dst: r.to_json() for dst, r in row.items()} for src, row in out.items()}, "notes": notes}

    @app.get(f"{PREFIX}/contents", tags=["contents"])
    async def list_contents(request: Request, user: User) -> dict:
        """The user's stored contents per type, oldest first; `id` is the most recent of `ids`."""
        return {"user": user, **service(request).list_contents(user)}

    @app.delete(f"{PREFIX}/contents/{{content_id}}", tags=["contents"])
    async def delete_content(
        request: Request, user: User, content_id: Annotated[str, Path(min_length=1, max_length=256)]
    ) -> dict:
        """Removes one id of the user's; the content itself goes with its last id."""
        modality, entry = await service(request).delete(user, content_id)
        return {"msg": f"Content {content_id} deleted", "type": modality, "remaining_ids": entry.ids}

    @app.get(f"{PREFIX}/info", tags=["service"])
    async def info(request: Request) -> dict:
        """Which encoders serve which types, how much is stored, which index kind searches it."""
        return service(request).info()

    @app.get("/healthz", tags=["service"])
    async def healthz(request: Request) -> dict:
        svc = service(request)
        return {"status": "ok", "modalities": list(svc.encoders.modalities)}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.state.metrics = service_metrics
    add_metrics(app, service_metrics, route=False)  # the route above serves the same registry
    app.add_middleware(RequestIdMiddleware)  # outermost: the id is bound for everything below
    return app


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
