"""A 202 means the item is in the database: after a burst of accepted jobs and a SIGKILL of the real service
(not a graceful stop), a restart indexes every accepted item and each is found by its own image."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from tests.ndd.conftest import encode
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam, wait_until


def _tiles(photos: dict[str, np.ndarray], count: int) -> dict[str, bytes]:
    """Distinct small images: windows of the photos at different places, 160 px."""
    out: dict[str, bytes] = {}
    names = sorted(photos)
    for n in range(count):
        photo = photos[names[n % len(names)]]
        h, w = photo.shape[:2]
        step = n // len(names)
        y, x = (step * h // 9) % (h // 2), (step * w // 7) % (w // 2)
        tile = Image.fromarray(np.ascontiguousarray(photo[y : y + h // 2, x : x + w // 2])).resize((160, 120))
        out[f"item-{n:03d}"] = encode(np.asarray(tile))
    return out


def test_every_accepted_item_is_indexed_after_sigkill(tmp_path: Path, photos) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(MAAM_DATA_DIR=str(tmp_path))
    images = _tiles(photos, 48)

    def start() -> ServiceProcess:
        process = ServiceProcess(maam("serve", "ndd", "--port", str(port)), env=env)
        process.wait_ready(http_healthy(base, timeout=1), timeout=60, what="ndd service")
        return process

    service = start()
    accepted: list[str] = []
    names = list(images)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for start_at in range(0, len(names), 3):  # a burst of small jobs
                batch = names[start_at : start_at + 3]
                files = [("files", (f"{n}.png", images[n], "image/png")) for n in batch]
                reply = client.post("/api/v1/images/jobs/upload", files=files, data={"ids": batch})
                assert reply.status_code == 202, reply.text
                accepted += batch
    finally:
        os.killpg(service.proc.pid, signal.SIGKILL)
        service.proc.wait(30)
    assert service.proc.returncode == -signal.SIGKILL
    with sqlite3.connect(tmp_path / "ndd" / "ndd.sqlite3") as db:
        pending = db.execute("SELECT COUNT(*) FROM job_items WHERE state='pending'").fetchone()[0]
    print(f"\naccepted {len(accepted)} items; {pending} still pending at the SIGKILL")
    assert pending > 0, "the kill came after all the work: the test proves nothing"

    service = start()
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            def listed() -> int:
                return client.get("/api/v1/images", params={"limit": 1000}).json()["total"]

            wait_until(lambda: listed() == len(accepted), timeout=300, interval=0.5, what="the resumed jobs")
            ids = {i["id"] for i in client.get("/api/v1/images", params={"limit": 1000}).json()["items"]}
            assert ids == set(accepted)
            for name in accepted:
                found = client.post("/api/v1/images/search/upload", params={"t_sim": 0.9, "t_rank": 20},
                                    files={"file": ("q.png", images[name], "image/png")}).json()["results"]
                assert name in [r["id"] for r in found], name
    finally:
        service.stop()
