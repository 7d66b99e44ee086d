"""Near-duplicate fixtures: the real NDD service (`maam serve ndd`) beside a DAM configured to use it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import skimage.data
from PIL import Image

from tests.dam.annotation_server import AnnotationProcess
from tests.dam.conftest import Dam, start_dam
from tests.support.processes import ServiceProcess, child_env, free_port, maam, wait_until

# NDD runs with an API key, as in compose: every DAM test also checks that the DAM sends it.
NDD_KEY = "test-ndd-key"


@dataclass
class Ndd:
    url: str
    data_dir: Path
    port: int
    process: ServiceProcess | None = None

    def start(self) -> None:
        env = child_env(MAAM_DATA_DIR=str(self.data_dir), MAAM_NDD__API_KEY=NDD_KEY)
        self.process = ServiceProcess(maam("serve", "ndd", "--port", str(self.port)), env=env)
        self.process.wait_ready(self._healthy, timeout=90, what="the NDD service")

    def _healthy(self) -> bool:
        try:  # /healthz needs the key too
            return httpx.get(f"{self.url}/healthz", headers={"X-API-Key": NDD_KEY}, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def items(self, collection: str, media: str = "images") -> list[str]:
        reply = httpx.get(f"{self.url}/api/v1/{media}", params={"collection_id": collection, "limit": 1000},
                          headers={"X-API-Key": NDD_KEY})
        if reply.status_code == 404:
            return []
        reply.raise_for_status()
        return sorted(i["id"] for i in reply.json()["items"])


def start_ndd(tmp: Path) -> Ndd:
    port = free_port()
    ndd = Ndd(f"http://127.0.0.1:{port}", tmp, port)
    ndd.start()
    return ndd


def start_dam_with_ndd(tmp: Path, server_uri: str, annotation_server: AnnotationProcess, ndd: Ndd,
                       **extra: str) -> Dam:
    return start_dam(tmp, server_uri, annotation_server.port, annotation_server.repository,
                     MAAM_DAM__NDD_URL=ndd.url, MAAM_NDD__API_KEY=NDD_KEY, MAAM_DAM__NDD_INTERVAL_S="0.2",
                     MAAM_DAM__MAX_UPLOAD_MB="8", **extra)


@pytest.fixture(scope="module")
def ndd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ndd]:
    instance = start_ndd(tmp_path_factory.mktemp("ndd"))
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def ndd_dam(tmp_path_factory: pytest.TempPathFactory, pg_server_uri: str, annotation_server, ndd: Ndd
            ) -> Iterator[Dam]:
    dam = start_dam_with_ndd(tmp_path_factory.mktemp("dam-ndd"), pg_server_uri, annotation_server, ndd)
    yield dam
    dam.process.stop()


def jpeg(pixels: np.ndarray, quality: int = 88) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo(name: str) -> np.ndarray:
    pixels = getattr(skimage.data, name)()
    return pixels[0] if isinstance(pixels, tuple) else pixels


def near_copy(pixels: np.ndarray) -> bytes:
    """A re-encoded, slightly cropped and shrunk copy: what a second download of the photo looks like."""
    h, w = pixels.shape[:2]
    cropped = Image.fromarray(pixels[h // 20: h - h // 20, w // 20: w - w // 20])
    return jpeg(np.asarray(cropped.resize((int(w * 0.7), int(h * 0.7)))), quality=60)


def wait_ndd_state(client: httpx.Client, asset_id: int, states: tuple[str, ...] = ("indexed",),
                   timeout: float = 90) -> dict:
    found: dict = {}

    def check() -> bool:
        found.update(client.get(f"/api/assets/{asset_id}/duplicates").json())
        return found["state"] in states

    wait_until(check, timeout, interval=0.1, what=f"asset {asset_id} NDD state in {states}")
    return found

