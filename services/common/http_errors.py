"""One error envelope for every HTTP service (DAM, NDD, CMRR): `{"detail": str, "status": int}`, plus
`errors` (one entry per field) when the request did not validate. It is published in each OpenAPI schema as
the body of every 4xx and 5xx answer, so clients and schema checkers read one shape, not FastAPI's
`detail`-is-a-string-or-an-array.

A service raises `ApiError` (or a subclass with its own `status`) from its own code, and maps the exceptions
of the libraries it uses to statuses when it installs the envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Location prefixes that only say where FastAPI looked; the field name is what a person needs.
_LOCATION_KINDS = ("query", "path", "body", "header", "cookie", "form")


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: str
    status: int
    errors: list[FieldError] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "The request was refused; `detail` says why."},
    "5XX": {"model": ErrorBody, "description": "The service failed or is unavailable; `detail` says why."},
}


class ApiError(Exception):
    """An error a client can act on; subclasses set `status`."""

    status = 400

    def __init__(self, message: str, status: int | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.headers = dict(headers or {})


def error_response(status: int, detail: str, *, errors: list[FieldError] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(detail=detail, status=status, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=dict(headers or {}))


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    return [FieldError(loc=[p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
                       msg=str(err.get("msg", "")), type=str(err.get("type", ""))) for err in exc.errors()]


def validation_message(errors: list[FieldError]) -> str:
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.loc if p not in _LOCATION_KINDS)
        parts.append(f"{where}: {err.msg}" if where else err.msg)
    return "; ".join(parts) or "invalid request"


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, detail, headers=exc.headers)


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    return error_response(422, validation_message(errors), errors=errors)


async def _on_api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, str(exc), headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug, not bad input: the log has the traceback (the server logs it again when this returns).
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(500, f"internal error ({type(exc).__name__}); the service log has the details "
                               f"under request id {getattr(request.state, 'request_id', '-')}")


def install_error_envelope(app: FastAPI, statuses: Mapping[type[Exception], int] | None = None) -> None:
    """Answers every error of `app` in the envelope; `statuses` maps library exceptions to HTTP statuses
    (the most specific class wins, as Starlette looks handlers up along the exception's MRO)."""
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(Exception, _on_unexpected)
    for exc_type, status in (statuses or {}).items():
        app.add_exception_handler(exc_type, _mapped(status))


def _mapped(status: int) -> Any:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return error_response(status, str(exc.args[0]) if len(exc.args) == 1 else str(exc))

    return handler


class BodyLimitEnvelope:
    """Starlette answers a body over FastAPI's `max_body_size` with a plain-text 413 of its own, sent past the
    exception handlers; this ASGI wrapper sends the envelope in its place, naming the cap in force."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def enveloped(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = dict(message.get("headers") or [])
                if headers.get(b"content-type", b"").startswith(b"text/plain"):
                    replaced = True
                    cap = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
                    limit = f" of {cap / (1024 * 1024):g} MiB" if isinstance(cap, int) else ""
                    response = error_response(413, f"the request body is over this route's limit{limit}")
                    await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
                    await send({"type": "http.response.body", "body": response.body})
                    return
            if replaced:
                return  # the plain-text body (and any more of it)
            await send(message)

        await self.app(scope, receive, enveloped)
