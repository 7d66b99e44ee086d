"""The NDD sync with the real NDD service: NDD stopped in the middle of a 100-asset ingest loses nothing
(every upload is accepted and annotated meanwhile) and catches up once NDD is back; an asset made public
moves from its owner's collection to the public one."""

from __future__ import annotations

import numpy as np

from tests.dam.conftest import Dam, upload, wait_annotated
from tests.dam.duplicates.conftest import Ndd, jpeg, photo, wait_ndd_state
from tests.support.processes import wait_until


def _distinct(seed: int) -> bytes:
    """A 96-pixel image unlike the others: blocks of random colours."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return jpeg(np.kron(blocks, np.ones((16, 16, 1), dtype=np.uint8)))


def test_ndd_outage_during_ingest_loses_nothing(ndd_dam: Dam, ndd: Ndd) -> None:
    client = ndd_dam.user("ingest@example.com")
    owner = client.get("/api/users/me").json()["id"]
    collection = f"dam-owner-{owner}"
    ids: list[int] = []
    for i in range(100):
        reply = upload(client, _distinct(i), f"img{i}.jpg")
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["id"])
        if len(ids) == 30:  # some are in NDD by now; stop it while the rest arrive
            wait_until(lambda: len(ndd.items(collection)) >= 5, 120, what="the first assets in NDD")
            ndd.stop()
    for asset_id in ids:  # annotation never waits for NDD
        wait_annotated(client, asset_id, ("done", "failed"), timeout=180)
    status = client.get("/api/duplicates/status").json()["assets"]
    assert status["indexed"] < 100 and status["queued"] + status["waiting"] > 0
    assert status["failed"] == 0

    ndd.start()  # same port and data folder
    wait_until(lambda: client.get("/api/duplicates/status").json()["assets"]["indexed"] == 100, 240,
               what="all 100 assets indexed after NDD came back")
    assert ndd.items(collection) == sorted(str(i) for i in ids)


def test_visibility_change_moves_the_asset(ndd_dam: Dam, ndd: Ndd) -> None:
    client = ndd_dam.user("mover@example.com")
    owner = client.get("/api/users/me").json()["id"]
    reply = upload(client, jpeg(photo("coffee")), "coffee.jpg")
    asset_id = reply.json()["id"]
    wait_annotated(client, asset_id, ("done", "failed"), timeout=120)
    wait_ndd_state(client, asset_id)
    assert str(asset_id) in ndd.items(f"dam-owner-{owner}")

    assert client.patch(f"/api/assets/{asset_id}", json={"visibility": "public"}).status_code == 200
    wait_until(lambda: str(asset_id) in ndd.items("dam-public") and str(asset_id) not in
               ndd.items(f"dam-owner-{owner}"), 90, what="the asset moved to the public collection")
    assert wait_ndd_state(client, asset_id)["state"] == "indexed"
