"""Near-duplicates through the DAM with the real NDD service: a near-duplicate upload is flagged on both
assets, the review groups them and keep-one/delete-others deletes (and NDD forgets), dismissing hides a group,
another user's private duplicate is never shown, and bad requests change nothing."""

from __future__ import annotations

import httpx

from tests.dam.conftest import Dam, upload, wait_annotated
from tests.dam.duplicates.conftest import Ndd, jpeg, near_copy, photo, wait_ndd_state
from tests.ndd.conftest import make_video
from tests.support.processes import wait_until


def _add(client: httpx.Client, data: bytes, name: str, **fields: str) -> int:
    reply = upload(client, data, name, **fields)
    assert reply.status_code == 201, reply.text
    asset_id = reply.json()["id"]
    wait_annotated(client, asset_id, ("done", "failed"), timeout=120)
    wait_ndd_state(client, asset_id)
    return asset_id


def _duplicate_ids(client: httpx.Client, asset_id: int) -> dict[int, float]:
    body = client.get(f"/api/assets/{asset_id}/duplicates").json()
    return {d["asset"]["id"]: d["score"] for d in body["duplicates"]}


def test_near_duplicate_flagged_grouped_and_resolved(ndd_dam: Dam, ndd: Ndd) -> None:
    alice = ndd_dam.user("alice@example.com")
    original = _add(alice, jpeg(photo("astronaut")), "astronaut.jpg")
    other = _add(alice, jpeg(photo("coffee")), "coffee.jpg")
    copy = _add(alice, near_copy(photo("astronaut")), "astronaut-copy.jpg")

    # The copy is flagged on both assets; the unrelated photo is nobody's near-duplicate.
    found = _duplicate_ids(alice, copy)
    assert set(found) == {original}
    assert 0.5 <= found[original] <= 1.0
    assert set(_duplicate_ids(alice, original)) == {copy}
    assert _duplicate_ids(alice, other) == {}

    review = alice.get("/api/duplicates").json()
    assert review["enabled"] is True
    groups = [sorted(a["id"] for a in g["assets"]) for g in review["groups"]]
    assert groups == [sorted([original, copy])]
    owner = alice.get(f"/api/assets/{original}").json()["owner_id"]
    assert ndd.items(f"dam-owner-{owner}") == sorted(str(i) for i in (original, other, copy))

    # Keep the original, delete the copy: the group goes, the copy is deleted, NDD forgets it.
    reply = alice.post("/api/duplicates/resolve", json={"groups": [{"keep": original, "delete": [copy]}]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"deleted": [copy]}
    assert alice.get(f"/api/assets/{copy}").status_code == 404
    assert alice.get("/api/duplicates").json()["groups"] == []
    assert _duplicate_ids(alice, original) == {}
    wait_until(lambda: ndd.items(f"dam-owner-{owner}") == sorted(str(i) for i in (original, other)), 60,
               what="NDD forgets the deleted copy")


def test_private_duplicates_of_others_never_shown_and_dismiss(ndd_dam: Dam) -> None:
    bob = ndd_dam.user("bob@example.com")
    carol = ndd_dam.user("carol@example.com")
    public = _add(bob, jpeg(photo("chelsea")), "cat.jpg", visibility="public")
    carols_copy = _add(carol, near_copy(photo("chelsea")), "my-cat.jpg")  # private
    bobs_copy = _add(bob, near_copy(photo("chelsea")), "cat-again.jpg")  # private

    # Carol sees Bob's public original beside her copy, never Bob's private copy.
    assert set(_duplicate_ids(carol, carols_copy)) == {public}
    assert bobs_copy not in _duplicate_ids(carol, public)
    carol_groups = [sorted(a["id"] for a in g["assets"]) for g in carol.get("/api/duplicates").json()["groups"]]
    assert carol_groups == [sorted([public, carols_copy])]
    # Bob sees his own pair, never Carol's private copy, whose page does not exist for him.
    assert set(_duplicate_ids(bob, public)) == {bobs_copy}
    assert carol.get(f"/api/assets/{bobs_copy}/duplicates").status_code == 404
    assert bob.get(f"/api/assets/{carols_copy}/duplicates").status_code == 404
    bob_groups = [sorted(a["id"] for a in g["assets"]) for g in bob.get("/api/duplicates").json()["groups"]]
    assert bob_groups == [sorted([public, bobs_copy])]

    # Carol may not delete Bob's asset: refused, nothing deleted (her own copy in the same request neither).
    reply = carol.post("/api/duplicates/resolve", json={"groups": [
        {"keep": carols_copy, "delete": [public]}]})
    assert reply.status_code == 403
    assert bob.get(f"/api/assets/{public}").status_code == 200
    # Dismissing is per user: Carol's review is empty, Bob's unchanged.
    reply = carol.post("/api/duplicates/dismiss", json={"groups": [[public, carols_copy]]})
    assert reply.status_code == 200 and reply.json() == {"dismissed": 1}
    assert carol.get("/api/duplicates").json()["groups"] == []
    assert len(bob.get("/api/duplicates").json()["groups"]) == 1


def test_bad_requests_change_nothing(ndd_dam: Dam) -> None:
    dave = ndd_dam.user("dave@example.com")
    mine = upload(dave, jpeg(photo("rocket")), "rocket.jpg").json()["id"]
    for body in ({"groups": []}, {"groups": [{"keep": mine, "delete": [mine]}]},
                 {"groups": [{"keep": 0, "delete": [mine]}]}, {"groups": [{"keep": mine, "delete": [2**70]}]}):
        reply = dave.post("/api/duplicates/resolve", json=body)
        assert reply.status_code == 422, (body, reply.text)
    assert dave.post("/api/duplicates/resolve", json={"groups": [{"keep": 10**9, "delete": [mine]}]}
                     ).status_code == 404
    assert dave.post("/api/duplicates/dismiss", json={"groups": [[mine]]}).status_code == 422
    assert dave.get(f"/api/assets/{mine}").status_code == 200
    assert dave.get("/api/duplicates", params={"limit": 0}).status_code == 422


def test_video_clip_matches_with_its_segment(ndd_dam: Dam) -> None:
    erin = ndd_dam.user("erin@example.com")
    shots = [(photo("astronaut"), 3.0), (photo("coffee"), 3.0), (photo("chelsea"), 3.0)]
    full = _add(erin, make_video(shots), "full.mp4")
    clip = _add(erin, make_video(shots, start=3.0, end=6.0), "clip.mp4")
    body = erin.get(f"/api/assets/{clip}/duplicates").json()
    assert [d["asset"]["id"] for d in body["duplicates"]] == [full]
    segment = body["duplicates"][0]["segments"][0]
    # The whole clip is the full video's middle shot (sampled at ~1 fps, so within about a second).
    assert segment["start"] <= 1.0 and segment["end"] >= 1.5
    assert 2.0 <= segment["other_start"] <= 4.0 and segment["other_end"] <= 6.5
    # Seen from the full video, the same segment the other way round.
    back = erin.get(f"/api/assets/{full}/duplicates").json()["duplicates"][0]["segments"][0]
    assert (back["start"], back["other_start"]) == (segment["other_start"], segment["start"])
