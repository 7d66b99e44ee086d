"""Counts never include another user's private items; downloads carry the sniffed type and `nosniff`."""

from __future__ import annotations

import pytest

from tests.dam.conftest import png_bytes, upload, wait_annotated


@pytest.fixture(scope="module")
def shared_project(dam):
    admin = dam.user("vis-admin@example.org")
    alice = dam.user("alice-vis@example.org")
    bob = dam.user("bob-vis@example.org")
    public = upload(alice, png_bytes(401, pattern="photo"), title="open", visibility="public").json()
    private = upload(alice, png_bytes(402, pattern="photo"), title="closed").json()
    for asset in (public, private):
        wait_annotated(alice, asset["id"])
    project = alice.post("/api/projects", json={"name": "showcase", "visibility": "public"}).json()
    alice.post(f"/api/projects/{project['id']}/assets", json={"asset_ids": [public["id"], private["id"]]})
    yield {"admin": admin, "alice": alice, "bob": bob, "project": project["id"], "public": public,
           "private": private}
    for client in (admin, alice, bob):
        client.close()


def test_project_counts_leave_out_private_members_of_others(shared_project):
    pid = shared_project["project"]
    counts = {}
    for who in ("alice", "bob", "admin"):
        client = shared_project[who]
        listed = next(p for p in client.get("/api/projects").json() if p["id"] == pid)
        one = client.get(f"/api/projects/{pid}").json()
        members = client.get(f"/api/projects/{pid}/assets").json()["total"]
        assert listed["asset_count"] == one["asset_count"] == members, who
        counts[who] = members
    assert counts == {"alice": 2, "bob": 1, "admin": 2}


def test_facets_count_only_visible_assets(shared_project):
    for who, expected in (("bob", 1), ("alice", 2)):
        reply = shared_project[who].get("/api/search", params={"project": shared_project["project"]}).json()
        assert reply["total"] == expected, who
        assert sum(reply["facets"]["kind"].values()) == expected, (who, reply["facets"])
        assert sum(reply["facets"]["month"].values()) == expected, (who, reply["facets"])


def test_downloads_carry_the_sniffed_type_and_nosniff(shared_project):
    alice = shared_project["alice"]
    # The client calls it HTML; the bytes are a PNG, and the PNG type is what comes back.
    reply = alice.post("/api/assets", files={"file": ("page.html", png_bytes(403), "text/html")})
    assert reply.status_code == 201 and reply.json()["mime"] == "image/png"
    download = alice.get(f"/api/assets/{reply.json()['id']}/download")
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment")
    # Text that only looks like a 3D model is served as one, never as something a browser would render.
    obj = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n<script>alert(1)</script>\n"
    model = alice.post("/api/assets", files={"file": ("m.obj", obj, "text/html")}).json()
    served = alice.get(f"/api/assets/{model['id']}/download")
    assert served.headers["content-type"] == "model/obj"
    assert served.headers["x-content-type-options"] == "nosniff"
    for path in ("/api/assets", "/healthz", f"/api/assets/{model['id']}/thumbnail"):
        assert alice.get(path).headers["x-content-type-options"] == "nosniff", path
