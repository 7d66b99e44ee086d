"""Blobs exist only with their rows: a refused upload leaves nothing on disk, garbage collection sweeps
blobs and temp files no row references, and a blob lost between the row's commit and its move is healed."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from tests.dam.conftest import png_bytes, upload


def _blobs(dam) -> set[str]:
    root = dam.data_dir / "dam" / "blobs"
    return {p.name for p in root.glob("??/??/*") if p.is_file()}


def _tmp(dam) -> list[Path]:
    return list((dam.data_dir / "dam" / "blobs" / "tmp").iterdir())


def _blob_path(dam, sha: str) -> Path:
    return dam.data_dir / "dam" / "blobs" / sha[:2] / sha[2:4] / sha


@pytest.fixture(scope="module")
def people(dam):
    admin = dam.user("gc-admin@example.org")
    alice = dam.user("alice-blobs@example.org")
    bob = dam.user("bob-blobs@example.org")
    yield admin, alice, bob
    for client in (admin, alice, bob):
        client.close()


def test_refused_uploads_leave_no_blob(dam, people):
    _, alice, bob = people
    private = bob.post("/api/projects", json={"name": "bob's"}).json()
    before = _blobs(dam)
    for project_id in (str(private["id"]), "987654"):  # another user's project, a missing one
        data = png_bytes(hash(project_id) % 10_000 + 300)
        reply = upload(alice, data, project_id=project_id)
        assert reply.status_code == 404, reply.text
        assert hashlib.sha256(data).hexdigest() not in _blobs(dam)
    assert _blobs(dam) == before and _tmp(dam) == []
    assert alice.get("/api/assets", params={"mine": True}).json()["total"] == 0


def test_gc_sweeps_orphan_blobs_and_stale_temp_files(dam, people):
    admin, alice, _ = people
    kept = upload(alice, png_bytes(301)).json()
    orphan_bytes = b"bytes no row references"
    orphan_sha = hashlib.sha256(orphan_bytes).hexdigest()
    orphan = _blob_path(dam, orphan_sha)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(orphan_bytes)
    thumb = dam.data_dir / "dam" / "thumbs" / f"{orphan_sha}_256.jpg"
    thumb.parent.mkdir(parents=True, exist_ok=True)
    thumb.write_bytes(b"jpeg")
    stale = dam.data_dir / "dam" / "blobs" / "tmp" / "upload-stale"
    stale.write_bytes(b"half an upload")
    hour_ago = time.time() - 3600
    for path in (orphan, stale, thumb):
        os.utime(path, (hour_ago, hour_ago))
    fresh = dam.data_dir / "dam" / "blobs" / "tmp" / "upload-in-flight"
    fresh.write_bytes(b"still streaming")  # written just now: an upload in flight, kept

    report = admin.post("/api/admin/gc", params={"grace_s": 60}).json()
    assert report["orphan_blobs_removed"] == 1 and report["temp_files_removed"] == 1, report
    assert not orphan.exists() and not thumb.exists() and not stale.exists()
    assert fresh.exists()
    assert _blob_path(dam, kept["sha256"]).exists()
    assert alice.get(f"/api/assets/{kept['id']}/download").content == png_bytes(301)
    fresh.unlink()


def test_a_blob_lost_after_its_commit_is_healed(dam, people):
    admin, alice, _ = people
    data = png_bytes(302)
    asset = upload(alice, data).json()
    path = _blob_path(dam, asset["sha256"])
    # A DAM killed between the row's commit and the blob's move leaves the bytes in the temp folder ...
    tmp = dam.data_dir / "dam" / "blobs" / "tmp" / "upload-killed"
    os.replace(path, tmp)
    hour_ago = time.time() - 3600
    os.utime(tmp, (hour_ago, hour_ago))
    report = admin.post("/api/admin/gc", params={"grace_s": 60}).json()
    assert report["temp_files_adopted"] == 1, report
    assert path.read_bytes() == data and not tmp.exists()
    # ... or the client uploads the same bytes again: the duplicate answer puts the blob back.
    path.unlink()
    again = upload(alice, data)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert path.read_bytes() == data
