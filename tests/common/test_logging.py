"""Structured JSON logs with request ids, over a real FastAPI app and a real grpc.aio server."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import grpc
import httpx
import pytest
from fastapi import FastAPI
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.logging import (
    JsonFormatter,
    RequestIdInterceptor,
    RequestIdMiddleware,
    clean_request_id,
    configure_logging,
    get_request_id,
    request_context,
)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Root logging configured by configure_logging, its stream swapped for a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    configure_logging("testsvc", "DEBUG", json_format=True)
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_every_record_is_one_json_object_with_service_level_and_extras(captured: io.StringIO) -> None:
    log = logging.getLogger("maam.test")
    log.info("stored %d annotations", 3, extra={"asset_id": 42})
    try:
        raise ValueError("broken frame")
    except ValueError:
        log.exception("decode failed")
    first, second = lines(captured)
    assert first["message"] == "stored 3 annotations"
    assert first["service"] == "testsvc" and first["level"] == "info" and first["logger"] == "maam.test"
    assert first["asset_id"] == 42
    assert "request_id" not in first
    assert second["level"] == "error" and "ValueError: broken frame" in second["exception"]


def test_request_context_binds_the_id_and_restores_the_previous_one(captured: io.StringIO) -> None:
    with request_context("abc-123") as rid:
        assert rid == "abc-123" and get_request_id() == "abc-123"
        logging.getLogger("x").warning("inside")
    logging.getLogger("x").warning("outside")
    inside, outside = lines(captured)
    assert inside["request_id"] == "abc-123"
    assert "request_id" not in outside and get_request_id() is None


def test_unsafe_request_ids_are_replaced() -> None:
    assert clean_request_id("ok-id") == "ok-id"
    for bad in (None, "", "x" * 500, "line\nbreak", "naïve"):
        replaced = clean_request_id(bad)
        assert replaced != bad and len(replaced) == 32


def test_text_format_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    monkeypatch.setenv("MAAM_LOG__FORMAT", "text")
    try:
        configure_logging("plain")
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
        configure_logging("json", json_format=True)
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert len(root.handlers) == 1  # reconfiguring replaces, never stacks handlers
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)


async def test_http_middleware_propagates_and_echoes_request_ids(captured: io.StringIO) -> None:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    @app.get("/work")
    async def work() -> dict:
        logging.getLogger("maam.dam").info("working")
        return {"request_id": get_request_id()}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        given = await client.get("/work", headers={"X-Request-ID": "req-7"})
        minted = await client.get("/work")
    assert given.headers["x-request-id"] == "req-7" and given.json()["request_id"] == "req-7"
    assert minted.headers["x-request-id"] == minted.json()["request_id"]
    assert len(minted.json()["request_id"]) == 32
    logged = [entry["request_id"] for entry in lines(captured) if entry["message"] == "working"]
    assert logged == ["req-7", minted.json()["request_id"]]


class _LoggingHealth(health.aio.HealthServicer):
    async def Check(self, request, context):
        logging.getLogger("maam.annotation").info("health checked")
        return await super().Check(request, context)


async def test_grpc_interceptor_binds_caller_id_and_returns_it(captured: io.StringIO) -> None:
    """Each call gets its own id, also now that the wrapped handler is made once per method."""
    server = grpc.aio.server(interceptors=[RequestIdInterceptor()])
    servicer = _LoggingHealth()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    returned: list[str] = []
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for given in ("grpc-42", None, "grpc-43"):
                metadata = (("x-request-id", given),) if given else None
                call = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), metadata=metadata)
                reply = await call
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                returned.append(dict(await call.trailing_metadata())["x-request-id"])
    finally:
        await server.stop(None)
    assert returned[0] == "grpc-42" and returned[2] == "grpc-43"
    assert len(returned[1]) == 32 and returned[1] not in ("grpc-42", "grpc-43")  # minted for the bare call
    logged = [entry for entry in lines(captured) if entry["message"] == "health checked"]
    assert [entry["request_id"] for entry in logged] == returned
