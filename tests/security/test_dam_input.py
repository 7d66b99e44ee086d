"""Malformed input never makes the DAM fail (5xx): NUL bytes in text, integers beyond PostgreSQL's bigint,
dates beyond what a day can be added to, NaN and infinities; each is a 422 that says what is wrong."""

from __future__ import annotations

import math

import httpx
import pytest

from tests.dam.conftest import png_bytes, upload, wait_annotated

NUL = "a\x00b"
HUGE = str(2**63)  # one above bigint's maximum
HUGER = str(10**30)


@pytest.fixture(scope="module")
def world(dam):
    with dam.user("mallory@example.org") as client:
        asset = upload(client, png_bytes(9101, pattern="photo"), title="fine").json()
        wait_annotated(client, asset["id"])
        project = client.post("/api/projects", json={"name": "p"}).json()
        detector = client.post("/api/detectors", data={"name": "d"},
                               files=[("anchors", ("a.png", png_bytes(9102)))]).json()
        yield {"client": client, "asset": asset["id"], "project": project["id"], "detector": detector["id"]}


def _refused(reply: httpx.Response, what: str) -> None:
    assert reply.status_code == 422, (what, reply.status_code, reply.text[:500])
    assert reply.json()["detail"], what


def test_nul_bytes_in_any_text_field_or_query_are_422(dam, world):
    client, asset, project, detector = world["client"], world["asset"], world["project"], world["detector"]
    with dam.client() as anon:
        _refused(anon.post("/api/auth/register", json={"email": f"x{NUL}@example.org", "password": "long enough"}),
                 "register email")
        _refused(anon.post("/api/auth/login", data={"username": f"x{NUL}@example.org", "password": "whatever1"}),
                 "login username")
    cases = [
        ("POST", "/api/users/me/api-keys", {"json": {"name": NUL}}),
        ("PATCH", f"/api/assets/{asset}", {"json": {"title": NUL}}),
        ("PATCH", f"/api/assets/{asset}", {"json": {"description": NUL}}),
        ("PATCH", f"/api/assets/{asset}", {"json": {"tags": [NUL]}}),
        ("POST", "/api/assets/lookup", {"json": {"sha256": [NUL]}}),
        ("GET", "/api/search", {"params": {"q": NUL}}),
        ("GET", "/api/search", {"params": {"objects": NUL}}),
        ("GET", "/api/search", {"params": {"label": NUL}}),
        ("GET", "/api/search", {"params": {"owner": NUL}}),
        ("GET", "/api/search", {"params": {"type": NUL}}),
        ("POST", "/api/search/similar", {"params": {"q": NUL}, "files": {"image": ("q.png", png_bytes(9103))}}),
        ("POST", "/api/projects", {"json": {"name": NUL}}),
        ("PATCH", f"/api/projects/{project}", {"json": {"description": NUL}}),
        ("POST", "/api/detectors", {"data": {"name": NUL}, "files": [("anchors", ("a.png", png_bytes(9104)))]}),
        ("PATCH", f"/api/detectors/{detector}", {"json": {"name": NUL}}),
        ("GET", "/api/ui/cards", {"params": {"ids": f"1,{NUL}"}}),
    ]
    for method, path, kwargs in cases:
        _refused(client.request(method, path, **kwargs), f"{method} {path} {kwargs}")
    for field in ("title", "description", "tags"):
        _refused(upload(client, png_bytes(9105), **{field: NUL}), f"upload {field}")
    # httpx escapes a NUL in a file name; a raw body carries it as it is.
    raw = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x\x00.png"\r\n\r\n'
           + png_bytes(9106) + b"\r\n--b--\r\n")
    _refused(client.post("/api/assets", content=raw, headers={"content-type": "multipart/form-data; boundary=b"}),
             "upload filename")
    assert client.get("/api/assets", params={"mine": True}).json()["total"] == 1  # nothing was stored


def test_ids_beyond_bigint_are_422(world):
    client, asset, project, detector = world["client"], world["asset"], world["project"], world["detector"]
    for huge in (HUGE, HUGER):
        cases = [
            ("GET", f"/api/assets/{huge}", {}),
            ("PATCH", f"/api/assets/{huge}", {"json": {"title": "t"}}),
            ("DELETE", f"/api/assets/{huge}", {}),
            ("GET", f"/api/assets/{huge}/download", {}),
            ("GET", f"/api/assets/{huge}/thumbnail", {}),
            ("GET", f"/api/assets/{huge}/annotations", {}),
            ("POST", f"/api/assets/{huge}/reannotate", {}),
            ("GET", f"/api/projects/{huge}", {}),
            ("GET", f"/api/projects/{huge}/assets", {}),
            ("POST", f"/api/projects/{project}/assets", {"content": f'{{"asset_ids": [{huge}]}}',
                                                          "headers": {"content-type": "application/json"}}),
            ("DELETE", f"/api/projects/{project}/assets/{huge}", {}),
            ("POST", f"/api/projects/{huge}/expand", {}),
            ("GET", f"/api/detectors/{huge}", {}),
            ("GET", f"/api/detectors/{huge}/matches", {}),
            ("POST", f"/api/detectors/{huge}/apply", {}),
            ("DELETE", f"/api/users/me/api-keys/{huge}", {}),
            ("GET", "/api/search", {"params": {"similar_to": huge}}),
            ("GET", "/api/search", {"params": {"project": huge}}),
            ("GET", "/api/search", {"params": {"owner": huge}}),
            ("GET", "/api/ui/cards", {"params": {"ids": huge}}),
            ("GET", f"/api/ui/assets/{huge}/saliency.png", {}),
        ]
        for method, path, kwargs in cases:
            _refused(client.request(method, path, **kwargs), f"{method} {path}")
        _refused(upload(client, png_bytes(9107), project_id=huge), "upload project_id")
    assert client.get(f"/api/detectors/{detector}").status_code == 200
    assert client.get(f"/api/assets/{asset}").status_code == 200


def test_out_of_range_dates_and_pages_are_422(world):
    client = world["client"]
    for params in ({"uploaded_to": "9999-12-31"}, {"uploaded_from": "9999-12-31", "uploaded_to": "9999-12-31"},
                   {"page": HUGE}, {"size": HUGE}):
        _refused(client.get("/api/search", params=params), str(params))
    for path in ("/api/assets", f"/api/projects/{world['project']}/assets"):
        _refused(client.get(path, params={"page": 10**12}), path)
    _refused(client.post(f"/api/projects/{world['project']}/expand", params={"k": 10**6}), "expand k")
    assert client.get("/api/search", params={"uploaded_to": "9999-12-30"}).status_code == 200


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_422_with_a_readable_message(world, value):
    client, detector = world["client"], world["detector"]
    body = f'{{"threshold": {value}}}'  # Python's JSON reader accepts these literals
    reply = client.patch(f"/api/detectors/{detector}", content=body, headers={"content-type": "application/json"})
    _refused(reply, f"PATCH threshold {value}")
    assert "threshold" in str(reply.json()["detail"])
    number = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[value]
    for path in (f"/api/detectors/{detector}/matches", f"/api/detectors/{detector}/apply"):
        method = "GET" if path.endswith("matches") else "POST"
        _refused(client.request(method, path, params={"threshold": number}), f"{path} {value}")
    _refused(client.get("/api/search", params={"min_score": number}), f"min_score {value}")
    _refused(client.post("/api/detectors", data={"name": "n", "threshold": number},
                         files=[("anchors", ("a.png", png_bytes(9108)))]), f"create threshold {value}")
    assert math.isfinite(client.get(f"/api/detectors/{detector}").json()["threshold"])


def test_request_controlled_sizes_are_bounded(dam, world):
    client = world["client"]
    _refused(client.post("/api/projects", json={"name": "n" * 201}), "project name")
    _refused(client.post("/api/users/me/api-keys", json={"name": "k" * 101}), "api key name")
    _refused(client.post("/api/assets/lookup", json={"sha256": ["f" * 10_000]}), "lookup digest length")
    _refused(client.patch(f"/api/assets/{world['asset']}", json={"tags": ["t" * 65]}), "tag length")
    _refused(client.get("/api/ui/cards", params={"ids": ",".join(["1"] * 5000)}), "cards ids length")
    with dam.client() as anon:
        _refused(anon.post("/api/auth/login", data={"username": "u@example.org", "password": "p" * 5000}),
                 "login password length")


def test_thresholds_too_small_for_single_precision_are_stored_not_500(world):
    """A cosine threshold like -9.4e-81 (found by schemathesis) is a valid number in [-1, 1] but underflows
    PostgreSQL's `real` column: it is stored as the single-precision value it rounds to."""
    client, detector = world["client"], world["detector"]
    updated = client.patch(f"/api/detectors/{detector}", json={"threshold": -9.42002543452976e-81})
    assert updated.status_code == 200, updated.text
    assert updated.json()["threshold"] == 0.0
    created = client.post("/api/detectors", data={"name": "tiny", "threshold": "1e-60"},
                          files=[("anchors", ("a.png", png_bytes(9103)))])
    assert created.status_code == 201, created.text
    assert created.json()["threshold"] == 0.0
    assert client.patch(f"/api/detectors/{detector}", json={"threshold": 0.3}).json()["threshold"] == pytest.approx(0.3)
