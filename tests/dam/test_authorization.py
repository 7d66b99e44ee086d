"""No endpoint leaks another user's private asset, project, detector or search hit."""

from __future__ import annotations

import pytest

from tests.dam.conftest import png_bytes, upload, wait_annotated


@pytest.fixture(scope="module")
def world(dam):
    """The first user is the admin; alice and bob are ordinary users with private and public things."""
    admin = dam.user("root@example.org")
    alice = dam.user("alice2@example.org")
    bob = dam.user("bob@example.org")
    secret_bytes = png_bytes(7001, pattern="photo")
    secret = upload(alice, secret_bytes, title="secret zeppelin plans").json()
    shared = upload(alice, png_bytes(7002, pattern="photo"), title="public zeppelin poster", visibility="public").json()
    wait_annotated(alice, secret["id"])
    wait_annotated(alice, shared["id"])
    project = alice.post("/api/projects", json={"name": "private project"}).json()
    alice.post(f"/api/projects/{project['id']}/assets", json={"asset_ids": [secret["id"], shared["id"]]})
    detector = alice.post("/api/detectors", data={"name": "zeppelin"},
                          files=[("anchors", ("a.png", secret_bytes))]).json()
    yield {"admin": admin, "alice": alice, "bob": bob, "secret": secret, "shared": shared, "project": project,
           "detector": detector, "secret_bytes": secret_bytes}
    for client in (admin, alice, bob):
        client.close()


def test_unauthenticated_requests_are_refused(dam):
    with dam.client() as anon:
        for path in ("/api/assets", "/api/search", "/api/projects", "/api/detectors", "/api/users/me"):
            reply = anon.get(path)
            assert reply.status_code == 401 and "Bearer" in reply.headers["www-authenticate"]
        assert anon.get("/api/assets", headers={"Authorization": "Bearer forged"}).status_code == 401
        assert anon.post("/api/auth/login", data={"username": "alice2@example.org", "password": "wrong password"}
                         ).status_code == 401


def test_private_asset_is_404_everywhere_for_others(world):
    bob, secret = world["bob"], world["secret"]
    sid = secret["id"]
    for method, path in (("GET", f"/api/assets/{sid}"), ("GET", f"/api/assets/{sid}/download"),
                         ("GET", f"/api/assets/{sid}/thumbnail"), ("GET", f"/api/assets/{sid}/annotations"),
                         ("PATCH", f"/api/assets/{sid}"), ("DELETE", f"/api/assets/{sid}"),
                         ("POST", f"/api/assets/{sid}/reannotate")):
        reply = bob.request(method, path, json={"title": "mine now"} if method == "PATCH" else None)
        assert reply.status_code == 404, (method, path, reply.status_code)
        assert "secret" not in reply.text
    assert bob.get("/api/search", params={"similar_to": sid}).status_code == 404
    assert bob.get("/api/search", params={"similar_to": sid, "box": "0,0,1,1"}).status_code == 404
    # A missing id and a private id are indistinguishable.
    assert bob.get("/api/assets/999999").json() == bob.get(f"/api/assets/{sid}").json()
    assert world["alice"].get(f"/api/assets/{sid}").status_code == 200


def test_search_and_listings_never_show_private_hits(world):
    bob, alice, admin = world["bob"], world["alice"], world["admin"]
    secret, shared = world["secret"]["id"], world["shared"]["id"]
    visible = {h["asset"]["id"] for h in bob.get("/api/search", params={"q": "zeppelin"}).json()["hits"]}
    assert visible == {shared}
    facets = bob.get("/api/search", params={"q": "zeppelin"}).json()["facets"]
    assert sum(facets["kind"].values()) == 1  # facet counts do not count the hidden asset either
    knn = bob.get("/api/search", params={"similar_to": shared, "size": 100}).json()
    assert secret not in {h["asset"]["id"] for h in knn["hits"]}
    by_image = bob.post("/api/search/similar", files={"image": ("q.png", world["secret_bytes"])}).json()
    assert secret not in {h["asset"]["id"] for h in by_image["hits"]}
    assert secret not in {a["id"] for a in bob.get("/api/assets", params={"size": 100}).json()["items"]}
    assert bob.post("/api/assets/lookup", json={"sha256": [world["secret"]["sha256"]]}).json() == {}
    assert {h["asset"]["id"] for h in alice.get("/api/search", params={"q": "zeppelin"}).json()["hits"]} == {
        secret, shared}
    assert secret in {h["asset"]["id"] for h in admin.get("/api/search", params={"q": "zeppelin"}).json()["hits"]}


def test_public_asset_is_readable_but_not_writable_by_others(world):
    bob, shared = world["bob"], world["shared"]["id"]
    assert bob.get(f"/api/assets/{shared}").status_code == 200
    assert bob.get(f"/api/assets/{shared}/download").status_code == 200
    assert bob.patch(f"/api/assets/{shared}", json={"title": "defaced"}).status_code == 403
    assert bob.delete(f"/api/assets/{shared}").status_code == 403
    assert world["alice"].get(f"/api/assets/{shared}").json()["title"] == "public zeppelin poster"


def test_private_project_and_detector_are_404_for_others(world):
    bob, pid, did = world["bob"], world["project"]["id"], world["detector"]["id"]
    for method, path in (("GET", f"/api/projects/{pid}"), ("GET", f"/api/projects/{pid}/assets"),
                         ("PATCH", f"/api/projects/{pid}"), ("DELETE", f"/api/projects/{pid}"),
                         ("POST", f"/api/projects/{pid}/expand"), ("DELETE", f"/api/projects/{pid}/assets/1"),
                         ("GET", f"/api/detectors/{did}"), ("GET", f"/api/detectors/{did}/matches"),
                         ("POST", f"/api/detectors/{did}/apply"), ("PATCH", f"/api/detectors/{did}"),
                         ("DELETE", f"/api/detectors/{did}")):
        body = {"name": "x"} if method == "PATCH" else None
        assert bob.request(method, path, json=body).status_code == 404, (method, path)
    assert bob.get("/api/search", params={"project": pid}).status_code == 404
    assert pid not in {p["id"] for p in bob.get("/api/projects").json()}
    assert did not in {d["id"] for d in bob.get("/api/detectors").json()}
    # bob cannot put alice's private asset into his own project either.
    own = bob.post("/api/projects", json={"name": "bob's"}).json()
    assert bob.post(f"/api/projects/{own['id']}/assets", json={"asset_ids": [world["secret"]["id"]]}
                    ).status_code == 404


def test_public_detector_matches_only_what_the_viewer_may_see(world):
    alice, bob, did = world["alice"], world["bob"], world["detector"]["id"]
    alice.patch(f"/api/detectors/{did}", json={"visibility": "public"})
    ranked = bob.get(f"/api/detectors/{did}/matches", params={"all_assets": True}).json()
    assert world["secret"]["id"] not in {m["asset_id"] for m in ranked}
    assert world["shared"]["id"] in {m["asset_id"] for m in ranked}
    assert world["secret"]["id"] in {m["asset_id"] for m in alice.get(
        f"/api/detectors/{did}/matches", params={"all_assets": True}).json()}
    # Applying a public detector labels only bob's own assets (none), never alice's.
    assert bob.post(f"/api/detectors/{did}/apply", params={"threshold": -1}).json() == []


def test_api_keys_and_roles(world, dam):
    bob, admin = world["bob"], world["admin"]
    key = bob.post("/api/users/me/api-keys", json={"name": "laptop"}).json()
    assert key["key"].startswith("maam_")
    with dam.client() as anon:
        assert anon.get("/api/users/me", headers={"X-API-Key": key["key"]}).json()["email"] == "bob@example.org"
        assert anon.get("/api/users/me", headers={"Authorization": f"Bearer {key['key']}"}).status_code == 200
        listed = bob.get("/api/users/me/api-keys").json()
        assert [k["name"] for k in listed] == ["laptop"] and listed[0]["key"] is None
        assert bob.delete(f"/api/users/me/api-keys/{key['id']}").status_code == 204
        assert anon.get("/api/users/me", headers={"X-API-Key": key["key"]}).status_code == 401
    assert admin.get("/api/users/me").json()["role"] == "admin"
    assert bob.get("/api/users").status_code == 403
    assert bob.post("/api/admin/gc").status_code == 403
    bob_id = bob.get("/api/users/me").json()["id"]
    assert admin.patch(f"/api/users/{bob_id}", json={"is_active": False}).status_code == 200
    assert bob.get("/api/users/me").status_code == 401
    admin.patch(f"/api/users/{bob_id}", json={"is_active": True})
    with dam.client() as anon:
        assert anon.post("/api/auth/register", json={"email": "bob@example.org", "password": "another pass"}
                         ).status_code == 409
        assert anon.post("/api/auth/register", json={"email": "short@example.org", "password": "short"}
                         ).status_code == 422
