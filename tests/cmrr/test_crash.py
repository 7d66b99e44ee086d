"""Every acknowledged add survives a SIGKILL of the real service (not a graceful stop) in the middle of a
burst of concurrent adds: after a restart each acknowledged id is listed and retrieved by its own content."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.cmrr.conftest import PREFIX, noise_image
from tests.support.processes import ServiceProcess, child_env, free_port, http_healthy, maam

CLIENTS, PER_CLIENT, KILL_AFTER = 6, 25, 60


def test_every_acknowledged_add_survives_sigkill(test_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(MAAM_DATA_DIR=str(tmp_path), MAAM_MODEL_REPOSITORY=str(test_repository))

    def start() -> ServiceProcess:
        process = ServiceProcess(maam("serve", "cmrr", "--port", str(port)), env=env)
        process.wait_ready(http_healthy(base), timeout=120, what="cmrr")
        return process

    def content(client: int, n: int) -> tuple[str, str, bytes]:
        if n % 2:
            return f"c{client}-{n}", "image", noise_image(1000 * client + n, size=40)
        # The test text encoder averages the first 8 bytes: two letters unique to (client, n) come first.
        return f"c{client}-{n}", "text", f"{chr(65 + client)}{chr(97 + n)} is post {n} of client {client}".encode()

    acknowledged: list[tuple[str, str, bytes]] = []
    lock = threading.Lock()
    enough = threading.Event()
    service = start()

    def burst(client: int) -> None:
        with httpx.Client(base_url=base + PREFIX, timeout=30) as http:
            for n in range(PER_CLIENT):
                content_id, kind, body = content(client, n)
                try:
                    reply = http.post("/add_content", params={"id": content_id, "type": kind, "user": "poster"},
                                      content=body)
                except httpx.HTTPError:
                    return  # killed mid-request: not acknowledged
                if reply.status_code == 200:
                    with lock:
                        acknowledged.append((content_id, kind, body))
                        if len(acknowledged) >= KILL_AFTER:
                            enough.set()

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(burst, c) for c in range(CLIENTS)]
            enough.wait(120)
            os.killpg(service.proc.pid, signal.SIGKILL)
            for future in futures:
                future.result()
    finally:
        if service.alive():
            os.killpg(service.proc.pid, signal.SIGKILL)
        service.proc.wait(30)
    assert service.proc.returncode == -signal.SIGKILL
    print(f"\n{len(acknowledged)} of {CLIENTS * PER_CLIENT} adds acknowledged before the SIGKILL")
    assert KILL_AFTER <= len(acknowledged) < CLIENTS * PER_CLIENT, "the kill did not come mid-burst"

    service = start()
    try:
        with httpx.Client(base_url=base + PREFIX, timeout=60) as http:
            listed = http.get("/contents", params={"user": "poster"}).json()
            stored = {e["id"] for kind in ("text", "image") for e in listed[kind]}
            assert {content_id for content_id, _, _ in acknowledged} <= stored
            for content_id, kind, body in acknowledged:
                found = http.post("/retrieve_contents", params={"user": "reader", "type": kind, "k": 1},
                                  content=body).json()[kind]
                assert found["contents"] == [content_id] and found["scores"][0] > 0.999, content_id
    finally:
        service.stop()
