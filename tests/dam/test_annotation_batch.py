"""Annotation workers batch: jobs waiting together go to the annotation service in one
ImageAnnotationStreamBatch call (at most MAAM_DAM__ANNOTATION_BATCH images), each asset's results are
stored and indexed as its own, and a lone upload is not held back for a batch."""

from __future__ import annotations

import hashlib

import pytest

from tests.dam.conftest import png_bytes, start_dam, upload, wait_annotated
from tests.support.processes import wait_until

BATCH = 4


@pytest.fixture(scope="module")
def batch_dam(tmp_path_factory, pg_server_uri, held_annotation):
    instance = start_dam(tmp_path_factory.mktemp("batch-dam"), pg_server_uri, held_annotation.port,
                         held_annotation.repository, MAAM_DAM__WORKERS="1",
                         MAAM_DAM__ANNOTATION_BATCH=str(BATCH))
    yield instance
    instance.process.stop()


def test_waiting_jobs_share_one_batch_call_and_each_asset_gets_its_own_results(batch_dam, held_annotation):
    client = batch_dam.user("batch@example.org")
    held_annotation.hold("test_detector")
    first = upload(client, png_bytes(500)).json()["id"]  # alone: its stream waits on the held model
    wait_until(lambda: client.get(f"/api/assets/{first}").json()["annotation_state"] == "running", 30,
               what="the first asset's job running")
    images = [png_bytes(600 + i) for i in range(6)]
    ids = [upload(client, data).json()["id"] for data in images]  # these wait while the worker is busy
    held_annotation.release()
    for asset_id in [first, *ids]:
        wait_annotated(client, asset_id)

    assert held_annotation.batches[:2] == [BATCH, 2], held_annotation.batches  # bounded, then the rest
    for data in images:
        assert held_annotation.completed[hashlib.sha256(data).hexdigest()] == 1
    expected = {a["model"] for a in client.get(f"/api/assets/{first}/annotations").json()}
    assert "test_detector" in expected
    for asset_id in ids:
        stored = client.get(f"/api/assets/{asset_id}/annotations").json()
        assert {a["model"] for a in stored} == expected, asset_id
        assert all(a["asset_id"] == asset_id for a in stored if "asset_id" in a)
    found = {h["asset"]["id"] for h in client.get("/api/search", params={"size": 50}).json()["hits"]}
    assert set(ids) <= found  # `done` means searchable, for every asset of the batch


def test_a_lone_upload_is_not_held_back_for_a_batch(batch_dam, held_annotation):
    client = batch_dam.user("lone@example.org")
    before = len(held_annotation.batches)
    asset_id = upload(client, png_bytes(700)).json()["id"]
    wait_annotated(client, asset_id)
    assert len(held_annotation.batches) == before  # one stream of its own, no batch call
    assert held_annotation.completed[hashlib.sha256(png_bytes(700)).hexdigest()] == 1
