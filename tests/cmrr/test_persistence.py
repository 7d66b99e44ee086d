"""Indexes and id maps survive a restart; the approximate index takes over above the configured size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from services.cmrr.index import IndexPolicy
from services.cmrr.store import ModalityStore, StoreError
from tests.cmrr.conftest import StartServer, add, image_bytes, noise_image


def test_contents_survive_a_restart(start_server: StartServer, tmp_path: Path) -> None:
    data = tmp_path / "state"
    server = start_server(data_dir=data)
    add(server, "t1", "text", "alice", b"a cat on a mat")
    add(server, "t2", "text", "alice", b"a cat on a mat")  # duplicate: ids [t1, t2]
    add(server, "i1", "image", "alice", image_bytes("chelsea"))
    add(server, "t3", "text", "bob", b"a dog in the fog")
    before = server.client.post("/retrieve_contents", params={"user": "carol", "type": "text", "k": 5},
                                content=b"cat").json()
    server.stop()
    files = sorted(p.name for p in (data / "cmrr" / "test-clip").iterdir())
    assert files == ["image.npz", "text.npz"]  # no temp files left behind

    again = start_server(data_dir=data)
    assert again.client.get("/info").json()["contents"] == {"text": 2, "image": 1}
    after = again.client.post("/retrieve_contents", params={"user": "carol", "type": "text", "k": 5},
                              content=b"cat").json()
    assert after == before
    assert again.client.get("/contents", params={"user": "alice"}).json()["text"][0]["ids"] == ["t1", "t2"]
    assert add(again, "t4", "text", "alice", b"a new post").json()["status"] == "added"


def test_approximate_index_above_the_configured_size(start_server: StartServer, tmp_path: Path) -> None:
    data = tmp_path / "state"
    server = start_server(data_dir=data, approximate_above=10, nprobe=64)
    for i in range(25):
        assert add(server, f"n{i}", "image", "bob", noise_image(i)).status_code == 200
    info = server.client.get("/info").json()
    assert info["index"]["image"].startswith("IVF") and info["index"]["text"] == "Flat"
    hits = server.client.post("/retrieve_contents", params={"user": "carol", "type": "image", "k": 3},
                              content=noise_image(7)).json()
    assert hits["image"]["contents"][0] == "n7"
    assert server.client.delete("/contents/n7", params={"user": "bob"}).status_code == 200
    server.stop()
    again = start_server(data_dir=data, approximate_above=10, nprobe=64)
    assert again.client.get("/info").json()["index"]["image"].startswith("IVF")
    hits = again.client.post("/retrieve_contents", params={"user": "carol", "type": "image", "k": 3},
                             content=noise_image(8)).json()
    assert hits["image"]["contents"][0] == "n8" and "n7" not in hits["image"]["contents"]


def _vector(i: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(i).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_a_damaged_file_stops_the_start_instead_of_being_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "text.npz"
    store = ModalityStore("text", path, IndexPolicy())
    store.add("u", "a", "d1", _vector(1))
    store.close()
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(StoreError, match="cannot read the saved text index"):
        ModalityStore("text", path, IndexPolicy()).load()
    assert path.read_bytes() == good[: len(good) // 2]


def test_a_crash_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "text.npz"
    store = ModalityStore("text", path, IndexPolicy(), snapshot_every=5)
    for i in range(7):
        store.add("u", f"id{i}", f"d{i}", _vector(i))
    store.add("u", "id0-again", "d0", _vector(0))  # duplicate
    store.remove_id("id3")
    # No close(): as if the process were killed. A snapshot folded in 5 changes; 4 are journaled.
    assert store.generation == 1
    journal = tmp_path / "text.1.journal"
    assert journal.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["text.1.journal", "text.npz"]
    with journal.open("ab") as handle:
        handle.write(b'{"op":"add","slot":99,"us')  # a torn append
    reloaded = ModalityStore("text", path, IndexPolicy())
    reloaded.load()
    assert len(reloaded) == 6
    assert reloaded.entry_for_id("id0-again").ids == ["id0", "id0-again"]
    assert reloaded.entry_for_id("id3") is None
    hits = reloaded.search(_vector(5)[None], 1, exclude_user=None)[0]
    assert hits[0][0].latest_id == "id5" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert reloaded.add("u", "new", "d-new", _vector(50)).entry.slot == 7  # slots are never reused


def test_a_failed_write_keeps_the_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "text.npz"
    store = ModalityStore("text", path, IndexPolicy())
    store.add("u", "a", "d1", _vector(1))
    journal = tmp_path / "text.0.journal"
    before = journal.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        store.add("u", "b", "d2", _vector(2))
    with pytest.raises(OSError, match="disk full"):
        store.add("u", "a-again", "d1", _vector(1))
    with pytest.raises(OSError, match="disk full"):
        store.remove_id("a")
    monkeypatch.undo()
    # Memory and disk agree: what was not written is not served.
    assert len(store) == 1 and store.entry_for_id("b") is None and store.entry_for_id("a").ids == ["a"]
    assert store.search(_vector(1)[None], 5, exclude_user=None)[0][0][0].latest_id == "a"
    assert journal.read_bytes() == before
    reloaded = ModalityStore("text", path, IndexPolicy())
    reloaded.load()
    assert len(reloaded) == 1 and reloaded.entry_for_id("a").ids == ["a"]
