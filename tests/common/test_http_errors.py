"""One error envelope for the three HTTP services: the bodies match the schema each one publishes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Annotated

import jsonschema
import pytest
from fastapi import FastAPI, HTTPException, Query
from fastapi.testclient import TestClient

from services.common.http_errors import ERROR_RESPONSES, ApiError, install_error_envelope
from tests.support.processes import REPO_ROOT, child_env


def _schema(name: str) -> dict:
    # In a child process: the DAM's metrics live in the process-wide default registry.
    code = f"import json; from services.{name}.app import create_app; print(json.dumps(create_app().openapi()))"
    done = subprocess.run([sys.executable, "-c", code], env=child_env(), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", ["dam", "ndd", "cmrr"])
def test_every_operation_publishes_the_envelope_for_4xx_and_5xx(name: str) -> None:
    schema = _schema(name)
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # detail as an array: not published
    body = schema["components"]["schemas"]["ErrorBody"]
    assert body["properties"]["detail"]["type"] == "string" and set(body["required"]) == {"detail", "status"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code in ("4XX", "5XX"):
                ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorBody", (name, method, path, code)


class Teapot(ApiError):
    status = 418


def _client() -> tuple[TestClient, dict]:
    app = FastAPI(responses=ERROR_RESPONSES)

    @app.get("/items/{item_id}")
    async def item(item_id: int, k: Annotated[int, Query(gt=0)] = 1, fail: str = "") -> dict:
        if fail == "http":
            raise HTTPException(409, "taken", headers={"Retry-After": "3"})
        if fail == "api":
            raise Teapot("short and stout")
        if fail == "lookup":
            raise LookupError("no such thing")
        if fail == "bug":
            raise RuntimeError("oops")
        return {"item_id": item_id}

    install_error_envelope(app, {LookupError: 404})
    schema = app.openapi()
    body_schema = {**schema["components"]["schemas"]["ErrorBody"], "$defs": schema["components"]["schemas"]}
    return TestClient(app, raise_server_exceptions=False), body_schema


def _refs_to_defs(schema: dict) -> dict:
    return json.loads(json.dumps(schema).replace("#/components/schemas/", "#/$defs/"))


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/items/x", 422, "item_id: Input should be a valid integer"),
    ("/items/1?k=0", 422, "k: Input should be greater than 0"),
    ("/items/1?fail=http", 409, "taken"),
    ("/items/1?fail=api", 418, "short and stout"),
    ("/items/1?fail=lookup", 404, "no such thing"),
    ("/items/1?fail=bug", 500, "internal error (RuntimeError)"),
    ("/nowhere", 404, "Not Found"),
])
def test_bodies_validate_against_the_published_schema(path: str, status: int, words: str) -> None:
    client, schema = _client()
    reply = client.get(path)
    assert reply.status_code == status
    jsonschema.validate(reply.json(), _refs_to_defs(schema))
    assert reply.json()["status"] == status and words in reply.json()["detail"]
    if status == 422:
        assert reply.json()["errors"][0]["loc"][0] in ("path", "query")
    if path.endswith("http"):
        assert reply.headers["retry-after"] == "3"  # headers of the exception are kept
