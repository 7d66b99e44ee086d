"""The index survives restarts, and a crash while saving leaves the previous index usable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import pytest

from services.common.faiss_files import load_index
from services.ndd.core.config import NddSettings
from services.ndd.descriptors import offline
from services.ndd.engine import Engine, ImageQuery
from tests.ndd.conftest import encode
from tests.support.processes import REPO_ROOT, ServiceProcess, child_env, free_port, http_healthy, maam


def _query(rgb: np.ndarray) -> ImageQuery:
    prepared = offline.prepare_query(rgb)
    return ImageQuery(offline.NAME, prepared.vectors, prepared)


def _ids(engine: Engine, rgb: np.ndarray) -> list[str]:
    return [m.item.item_id for m in engine.search_images("default", _query(rgb), 0.5, 5)]


def test_restart_of_the_service_keeps_the_index(tmp_path, photos):
    port = free_port()
    env = child_env(MAAM_DATA_DIR=str(tmp_path / "data"))
    base = f"http://127.0.0.1:{port}"

    healthy = http_healthy(base, timeout=1)

    def start() -> ServiceProcess:
        service = ServiceProcess(maam("serve", "ndd", "--port", str(port)), env=env)
        service.wait_ready(healthy, timeout=60, what="ndd service")
        return service

    query = {"file": ("q.jpg", encode(photos["coffee"][20:380, 30:570], "JPEG", 40), "image/jpeg")}
    service = start()
    try:
        files = [("files", (f"{n}.png", encode(photos[n]))) for n in ("coffee", "chelsea")]
        job = httpx.post(f"{base}/api/v1/images/jobs/upload", files=files, data={"ids": ["coffee", "chelsea"]}).json()
        def finished() -> bool:
            return httpx.get(f"{base}/api/v1/jobs/{job['job_id']}").json()["status"] == "done"

        service.wait_ready(finished, timeout=60, what="indexing job")
        state = httpx.get(f"{base}/api/v1/jobs/{job['job_id']}").json()
        assert state["indexed"] == ["coffee", "chelsea"]
        before = httpx.post(f"{base}/api/v1/images/search/upload", files=query).json()["results"]
        assert [r["id"] for r in before] == ["coffee"]
    finally:
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
        assert service.stop() in (0, -signal.SIGTERM)
    assert list((tmp_path / "data" / "ndd" / "indexes").rglob("image-offline.faiss"))

    service = start()
    try:
        after = httpx.post(f"{base}/api/v1/images/search/upload", files=query).json()["results"]
        assert [r["id"] for r in after] == ["coffee"] and after[0]["score"] == before[0]["score"]
        assert httpx.get(f"{base}/api/v1/images").json()["total"] == 2
    finally:
        service.stop()


def test_crash_during_save_leaves_previous_index_usable(tmp_path, photos, monkeypatch):
    data_dir = tmp_path / "ndd"
    engine = Engine(data_dir, NddSettings())
    engine.add_image("default", "chelsea", photos["chelsea"], None, {})
    engine.persist("default")
    [path] = list((data_dir / "indexes").rglob("image-offline.faiss"))
    saved_before = path.read_bytes()

    def dies(fd: int) -> None:  # the new file is written but never made durable: the writer dies
        raise OSError("simulated crash in the middle of writing the index")

    monkeypatch.setattr(os, "fsync", dies)
    engine.add_image("default", "rocket", photos["rocket"], None, {})
    with pytest.raises(OSError, match="simulated crash"):
        engine.persist("default")
    monkeypatch.undo()

    assert path.read_bytes() == saved_before  # the previous index is untouched
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind
    previous = load_index(path)
    assert previous is not None and previous.index.ntotal == len(offline.describe_reference(photos["chelsea"]))
    engine.close()

    # A fresh engine (a restart) finds the saved index stale and rebuilds it from the stored descriptors.
    restarted = Engine(data_dir, NddSettings())
    assert _ids(restarted, photos["chelsea"]) == ["chelsea"]
    assert _ids(restarted, photos["rocket"]) == ["rocket"]
    assert load_index(path).generation == restarted.store.generation("default", "image", "offline")
    restarted.close()


def test_writer_killed_with_sigkill_mid_save_leaves_previous_index(tmp_path, photos):
    """A real process dies (SIGKILL) after writing part of the temp file: the old index stays."""
    data_dir = tmp_path / "ndd"
    engine = Engine(data_dir, NddSettings())
    engine.add_image("default", "chelsea", photos["chelsea"], None, {})
    engine.persist("default")
    engine.close()
    [path] = list((data_dir / "indexes").rglob("image-offline.faiss"))
    saved_before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal, numpy as np, skimage.data as data
        from services.ndd.engine import Engine
        from services.ndd.core.config import NddSettings

        def die(fd):  # the temp file is written, the process is killed before it is renamed
            os.kill(os.getpid(), signal.SIGKILL)

        os.fsync = die
        engine = Engine(__import__("pathlib").Path({str(data_dir)!r}), NddSettings())
        engine.add_image("default", "rocket", data.rocket(), None, {{}})
        engine.persist("default")
    """)
    result = subprocess.run([sys.executable, "-c", script], env=child_env(), cwd=REPO_ROOT, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert path.read_bytes() == saved_before
    leftovers = [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers  # the torn temp file is there, but nothing reads it
    restarted = Engine(data_dir, NddSettings())
    assert _ids(restarted, photos["rocket"]) == ["rocket"]  # committed in SQLite before the crash
    assert _ids(restarted, photos["chelsea"]) == ["chelsea"]
    restarted.close()


def test_corrupt_index_file_is_rebuilt_from_stored_descriptors(tmp_path, photos):
    data_dir = tmp_path / "ndd"
    engine = Engine(data_dir, NddSettings())
    engine.add_image("default", "coffee", photos["coffee"], None, {})
    engine.persist("default")
    engine.close()
    [path] = list((data_dir / "indexes").rglob("image-offline.faiss"))
    path.write_bytes(b"garbage" * 10)
    restarted = Engine(data_dir, NddSettings())
    assert _ids(restarted, photos["coffee"]) == ["coffee"]
    assert load_index(path) is not None
    restarted.close()


def test_large_index_switches_to_hnsw_and_still_finds(tmp_path, photos):
    engine = Engine(tmp_path / "ndd", NddSettings(flat_max_vectors=150))
    for name in ("chelsea", "coffee", "rocket"):
        engine.add_image("default", name, photos[name], None, {})
    kinds = {s["descriptor"]: s["kind"] for s in engine.index_stats("default")}
    assert kinds == {"offline": "hnsw", "offline-keypoints": "multihash"}
    assert _ids(engine, photos["astronaut"]) == []
    assert _ids(engine, photos["coffee"][:, ::-1].copy()) == ["coffee"]
    engine.close()
