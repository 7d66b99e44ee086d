"""With MAAM_NDD__API_KEY set, every NDD route answers 401 without the key (issue 20: anyone could list or
delete a collection), in the one error envelope; the key works as X-API-Key and as a bearer token."""

from __future__ import annotations

import pytest

from services.common.service_auth import key_headers
from tests.ndd.conftest import upload_images
from tests.support.media import encode_image

KEY = "ndd-test-key-8f2c"
ROUTES = [
    ("GET", "/api/v1/collections"), ("POST", "/api/v1/collections"), ("GET", "/api/v1/collections/default"),
    ("DELETE", "/api/v1/collections/default"), ("GET", "/api/v1/images"), ("POST", "/api/v1/images/jobs"),
    ("POST", "/api/v1/images/jobs/upload"), ("DELETE", "/api/v1/images/indices/x"),
    ("GET", "/api/v1/images/search/x"), ("POST", "/api/v1/images/search"), ("POST", "/api/v1/images/search/upload"),
    ("GET", "/api/v1/videos"), ("POST", "/api/v1/videos/jobs"), ("GET", "/api/v1/jobs/1"),
    ("GET", "/healthz"), ("GET", "/metrics"),
]


@pytest.fixture
def client(make_client):
    return make_client(api_key=KEY)


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_needs_the_key(client, method: str, path: str) -> None:
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        body = response.json()
        assert body["status"] == 401 and "API key" in body["detail"] and KEY not in response.text
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_key_opens_the_api_as_header_or_bearer(client, photos) -> None:
    assert client.get("/api/v1/collections").status_code == 401
    client.headers.update(key_headers(KEY))
    job = upload_images(client, {"chelsea": encode_image(photos["chelsea"])})
    assert job["status"] == "done"
    listed = client.get("/api/v1/images").json()
    assert [item["id"] for item in listed["items"]] == ["chelsea"]
    client.headers.pop("X-API-Key")
    bearer = client.get("/api/v1/images", headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200 and bearer.json() == listed


def test_the_openapi_document_names_the_schemes(client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"APIKeyHeader", "HTTPBearer"} <= set(schema["components"]["securitySchemes"])
    assert schema["paths"]["/api/v1/collections"]["get"]["security"]


def test_without_a_key_the_service_stays_open(make_client) -> None:
    assert make_client().get("/api/v1/collections").status_code == 200
