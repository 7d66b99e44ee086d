"""The database is the truth: contents survive restarts, a damaged index cache is rebuilt from it, a failed
write changes nothing, and the approximate index takes over above the configured size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from services.cmrr.store import ContentStore
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
    caches = sorted(p.name for p in (data / "cmrr" / "indexes").iterdir())
    assert len(caches) == 2 and all(p.endswith(("-text.faiss", "-image.faiss")) for p in caches)  # no temp files

    again = start_server(data_dir=data)
    assert again.client.get("/info").json()["contents"] == {"text": 2, "image": 1}
    after = again.client.post("/retrieve_contents", params={"user": "carol", "type": "text", "k": 5},
                              content=b"cat").json()
    assert after == before
    assert again.client.get("/contents", params={"user": "alice"}).json()["text"][0]["ids"] == ["t1", "t2"]
    assert add(again, "t4", "text", "alice", b"a new post").json()["status"] == "added"


def test_a_damaged_or_stale_index_cache_is_rebuilt_from_the_database(start_server: StartServer,
                                                                     tmp_path: Path) -> None:
    data = tmp_path / "state"
    server = start_server(data_dir=data)
    for i in range(5):
        add(server, f"n{i}", "image", "bob", noise_image(i))
    server.stop()
    [image_cache] = (data / "cmrr" / "indexes").glob("*-image.faiss")
    image_cache.write_bytes(image_cache.read_bytes()[:100])  # torn
    with sqlite3.connect(data / "cmrr" / "cmrr.sqlite3") as db:  # a change the cache never saw
        db.execute("UPDATE generations SET generation = generation + 1 WHERE modality='text'")
    again = start_server(data_dir=data)
    hits = again.client.post("/retrieve_contents", params={"user": "carol", "type": "image", "k": 1},
                             content=noise_image(3)).json()
    assert hits["image"]["contents"] == ["n3"] and hits["image"]["scores"][0] == pytest.approx(1.0, abs=1e-4)


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


def test_a_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ContentStore(tmp_path / "cmrr.sqlite3")
    store.add("u", "a", "text", "d1", b"first", {"s": _vector(1)})

    def disk_full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ContentStore, "_put_vector", disk_full)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        store.add("u", "b", "text", "d2", b"second", {"s": _vector(2)})
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):  # a replace that fails keeps the old
        store.add("u", "a", "text", "d3", b"third", {"s": _vector(3)})
    monkeypatch.undo()
    assert store.counts() == {"text": 1}
    assert [e.ids for e in store.user_entries("u", "text")] == [["a"]]
    vectors, slots = store.all_vectors("s", "text")
    assert len(slots) == 1 and np.allclose(vectors[0], _vector(1))
    store.close()
