"""With MAAM_CMRR__API_KEY set, every CMRR route needs the key, and the original MediaVerse routes
(`/mv_retrieval/v0.1/add_content`, `retrieve_contents`, `recommend_contents`) keep answering as before when
the client sends it (issue 20: anyone could list or delete `?user=alice`'s contents)."""

from __future__ import annotations

import httpx

from services.common.service_auth import key_headers
from tests.cmrr.conftest import PREFIX, StartServer, add, image_bytes

KEY = "cmrr-test-key-41d9"


def test_every_route_needs_the_key_and_the_original_routes_work_with_it(start_server: StartServer) -> None:
    server = start_server(api_key=KEY)
    routes = [("POST", f"{PREFIX}/add_content?id=a&type=text&user=bob"),
              ("POST", f"{PREFIX}/retrieve_contents?type=text&user=bob&k=3"),
              ("POST", f"{PREFIX}/recommend_contents?user=bob&k=3"), ("GET", f"{PREFIX}/contents?user=bob"),
              ("DELETE", f"{PREFIX}/contents/a?user=bob"), ("GET", f"{PREFIX}/info"), ("GET", "/healthz"),
              ("GET", "/metrics")]
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        for method, path in routes:
            for headers in ({}, {"X-API-Key": KEY[:-1]}, {"Authorization": "Bearer nope"}):
                response = anonymous.request(method, path, headers=headers, content=b"a cat")
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json()["status"] == 401 and KEY not in response.text

    server.client.headers.update(key_headers(KEY))
    assert add(server, "t-cat", "text", "bob", b"a tabby cat").json()["status"] == "added"
    assert add(server, "i-cat", "image", "bob", image_bytes("chelsea")).status_code == 200
    found = server.client.post("/retrieve_contents", params={"user": "alice", "type": "text", "k": 2},
                               content=b"a cat")
    assert found.status_code == 200 and found.json()["text"]["contents"] == ["t-cat"]
    recommended = server.client.post("/recommend_contents", params={"user": "bob", "k": 2})
    assert recommended.status_code == 200
    assert server.client.get("/contents", params={"user": "bob"}).json()["text"][0]["id"] == "t-cat"
    server.client.headers.pop("X-API-Key")
    bearer = server.client.delete("/contents/t-cat", params={"user": "bob"}, headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200
