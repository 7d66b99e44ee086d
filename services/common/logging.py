"""Structured JSON logs, one object per line, with the service name and the current request id.

`configure_logging("dam")` once at start-up makes every `logging` call (ours, uvicorn's, grpc's)
print one JSON object per line on stderr, which `docker compose logs`, Loki or Elasticsearch ingest
as is. The request id lives in a context variable: the HTTP middleware and the gRPC interceptor
below set it from the caller's `X-Request-ID` header (or mint one) so every line logged while
serving that request carries it, and it is echoed back to the caller.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import grpc

from services.common.grpc_wrap import WrappedHandlers
from services.common.settings import Settings

REQUEST_ID_HEADER = "x-request-id"
# Longer or stranger ids from callers are replaced, so logs cannot be flooded or forged through it.
_MAX_REQUEST_ID = 128

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("maam_request_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
# uvicorn's `color_message` duplicates the message with ANSI colours.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str:
    """The caller's id when it is short printable ASCII, else a fresh one."""
    if value and len(value) <= _MAX_REQUEST_ID and value.isascii() and value.isprintable():
        return value
    return new_request_id()


def get_request_id() -> str | None:
    return request_id_var.get()


@contextmanager
def request_context(request_id: str | None = None) -> Iterator[str]:
    """Binds a request id (a fresh one when None) to everything logged inside the block."""
    value = clean_request_id(request_id)
    token = request_id_var.set(value)
    try:
        yield value
    finally:
        request_id_var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, service, logger, message, request_id, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(service: str, level: int | str | None = None, *, json_format: bool | None = None) -> None:
    """Routes every logger to stderr as JSON lines tagged with `service`.

    `level` defaults to `MAAM_LOG__LEVEL` (INFO); `json_format` to `MAAM_LOG__FORMAT` != "text", so a
    developer can ask for plain lines. Calling it again replaces the handler.
    """
    if level is None or json_format is None:
        log = Settings().log  # read now, not the cached settings: a test may change the environment
        if level is None:
            level = log.level
        if json_format is None:
            json_format = log.format != "text"
    if isinstance(level, str):
        level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s %(message)s"))
    handler.set_name("maam")
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn installs its own handlers unless told not to (`log_config=None`); route them to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


# --- request ids over HTTP (ASGI) -------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestIdMiddleware:
    """ASGI middleware: takes `X-Request-ID` from the request (or mints one), binds it for logging
    and returns it in the response headers. `app.add_middleware(RequestIdMiddleware)`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope.get("headers") or ():
            if key.decode("latin-1").lower() == REQUEST_ID_HEADER:
                incoming = value.decode("latin-1")
                break
        with request_context(incoming) as request_id:
            scope.setdefault("state", {})["request_id"] = request_id

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                    message["headers"] = headers
                await send(message)

            await self.app(scope, receive, send_with_id)


# --- request ids over gRPC (grpc.aio) ---------------------------------------------------------


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    """grpc.aio server interceptor: binds the caller's `x-request-id` metadata (or a fresh id) while
    the RPC runs and sends it back as trailing metadata (initial metadata may already be gone)."""

    def __init__(self) -> None:
        self._wrapped = WrappedHandlers()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self._wrapped.get(handler, lambda: _request_id_around)


@contextmanager
def _request_id_around(context: grpc.aio.ServicerContext) -> Iterator[None]:
    incoming = None
    for key, value in context.invocation_metadata() or ():
        if key.lower() == REQUEST_ID_HEADER:
            incoming = value if isinstance(value, str) else value.decode("latin-1")
            break
    with request_context(incoming) as request_id:
        # Metadata is a courtesy to the caller, never a reason to fail the call.
        with suppress(Exception):
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        yield
