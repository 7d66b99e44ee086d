"""Caps that agree (issue 22): an asset over the gRPC message cap reaches the annotation service as a signed,
short-lived link to the DAM's blob route, not as one giant message; a message the service refuses as too large
(RESOURCE_EXHAUSTED) fails the asset at once instead of being retried for hours. Real services throughout: the
annotation service with a 1 MiB message cap, DAMs on the embedded PostgreSQL."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from PIL import Image
from sqlalchemy.engine import make_url

from services.dam.core.blob_links import BlobLinks
from tests.dam.annotation_server import AnnotationProcess
from tests.dam.conftest import Dam, png_bytes, start_dam, upload, wait_annotated
from tests.support.media import encode_image, make_video, pad_mp4
from tests.support.processes import free_port

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def small_cap_annotation(test_repository: Path) -> Iterator[AnnotationProcess]:
    """The annotation service refusing any gRPC message over 1 MiB."""
    server = AnnotationProcess(test_repository, free_port(), MAAM_ANNOTATION__MAX_MESSAGE_MB="1")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def linking_dam(tmp_path_factory: pytest.TempPathFactory, pg_server_uri: str,
                small_cap_annotation: AnnotationProcess) -> Iterator[Dam]:
    """A DAM that agrees with the 1 MiB cap: everything goes by link (MAAM_DAM__INLINE_MAX_MB=0)."""
    instance = start_dam(tmp_path_factory.mktemp("dam-links"), pg_server_uri, small_cap_annotation.port,
                         small_cap_annotation.repository, MAAM_ANNOTATION__MAX_MESSAGE_MB="1",
                         MAAM_DAM__INLINE_MAX_MB="0", MAAM_DAM__MAX_UPLOAD_MB="8")
    yield instance
    instance.process.stop()


def _video(size: int) -> bytes:
    frames = [np.full((48, 64, 3), (i * 40) % 256, np.uint8) for i in range(6)]
    return pad_mp4(make_video(frames, codec="mpeg4"), size)


def _noise_png(side: int) -> bytes:
    """A PNG that does not compress: about side * side * 3 bytes."""
    return encode_image(np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8), "PNG")


def _jobs(dam: Dam, asset_id: int) -> list[tuple[str, int, str | None]]:
    url = make_url(dam.database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT state, attempts, last_error FROM annotation_jobs WHERE asset_id = %s",
                            (asset_id,)).fetchall()


def _links(dam: Dam, ttl_s: float = 60) -> BlobLinks:
    return BlobLinks((dam.data_dir / "dam" / "blob-links.key").read_bytes(), dam.url, ttl_s)


def test_a_video_over_the_message_cap_is_annotated_through_a_link(linking_dam: Dam) -> None:
    data = _video(3 * MIB)  # three times the cap
    with linking_dam.user("big@example.org") as client:
        reply = upload(client, data, "big.mp4")
        assert reply.status_code == 201, reply.text
        done = wait_annotated(client, reply.json()["id"], states=("done", "failed"), timeout=120)
        assert done["annotation_state"] == "done", done
        models = client.get(f"/api/assets/{done['id']}/annotations").json()
        assert models and all(row["state"] == "done" for row in models)
    assert _jobs(linking_dam, done["id"]) == [("done", 1, None)]


def test_an_image_over_the_inline_size_goes_by_link_too(linking_dam: Dam) -> None:
    data = _noise_png(700)  # ~1.4 MiB: over the 1 MiB cap
    assert len(data) > MIB
    with linking_dam.user("photo@example.org") as client:
        reply = upload(client, data, "big.png")
        assert reply.status_code == 201, reply.text
        done = wait_annotated(client, reply.json()["id"], states=("done", "failed"), timeout=120)
    assert done["annotation_state"] == "done", done


def test_a_message_over_the_cap_fails_at_once_instead_of_for_hours(
    tmp_path: Path, pg_server_uri: str, small_cap_annotation: AnnotationProcess
) -> None:
    """The seam bug: a DAM whose cap is larger than the service's sends the image inline; the service answers
    RESOURCE_EXHAUSTED, which is permanent: one attempt, failed, the reason kept (retries would go on for the
    1000 attempts this DAM allows)."""
    dam = start_dam(tmp_path, pg_server_uri, small_cap_annotation.port, small_cap_annotation.repository,
                    MAAM_DAM__MAX_UPLOAD_MB="8")
    try:
        with dam.user("inline@example.org") as client:
            reply = upload(client, _noise_png(700), "inline.png")
            assert reply.status_code == 201, reply.text
            failed = wait_annotated(client, reply.json()["id"], states=("failed",), timeout=60)
        assert "RESOURCE_EXHAUSTED" in failed["annotation_error"]
        [(state, attempts, error)] = _jobs(dam, failed["id"])
        assert (state, attempts) == ("failed", 1) and "RESOURCE_EXHAUSTED" in error
    finally:
        dam.process.stop()


def test_the_blob_route_serves_signed_links_only(linking_dam: Dam) -> None:
    data = png_bytes(7)
    with linking_dam.user("links@example.org") as client:
        asset = upload(client, data, "small.png").json()
    sha, other = asset["sha256"], "0" * 64
    links = _links(linking_dam)
    good = links.url(sha)
    assert httpx.get(good).content == data  # no credentials: the signature is one
    assert httpx.get(good.replace("signature=", "signature=0")).status_code == 403
    assert httpx.get(good.replace(sha, other)).status_code == 403  # a signature is for one blob
    expired = links.url(sha, now=time.time() - 3600)
    assert httpx.get(expired).status_code == 403
    assert httpx.get(f"{linking_dam.url}/api/blobs/{sha}").status_code == 422  # unsigned
    assert httpx.get(links.url(other)).status_code == 404  # signed, but no such blob
    stranger = BlobLinks(b"k" * 32, linking_dam.url, 60)  # another DAM's key
    assert httpx.get(stranger.url(sha)).status_code == 403


def test_caps_that_cannot_agree_stop_the_dam_at_startup(tmp_path: Path, pg_server_uri: str) -> None:
    with pytest.raises(RuntimeError, match="MAAM_MEDIA__MAX_FETCH_MB"):
        start_dam(tmp_path, pg_server_uri, free_port(), MAAM_DAM__MAX_UPLOAD_MB="600")


def _bilevel_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")  # one bit per pixel: tens of KB on disk
    return buffer.getvalue()


def test_uploads_are_checked_against_maam_s_pixel_limit(tmp_path: Path, pg_server_uri: str) -> None:
    """The upload check used a hard-coded 100 Mpx under Pillow's own 89.5 Mpx: now it is
    MAAM_MEDIA__MAX_IMAGE_PIXELS, both ways (annotation is never reached: nothing listens on its port)."""
    dam = start_dam(tmp_path, pg_server_uri, free_port(), MAAM_MEDIA__MAX_IMAGE_PIXELS="96000000")
    try:
        with dam.user("pixels@example.org") as client:
            allowed = upload(client, _bilevel_png(9_500, 10_000), "95mpx.png")  # over Pillow's default
            assert allowed.status_code == 201, allowed.text
            assert (allowed.json()["width"], allowed.json()["height"]) == (9_500, 10_000)
            refused = upload(client, _bilevel_png(9_700, 10_000), "97mpx.png")
            assert refused.status_code == 422
            assert "over the 96,000,000-pixel limit" in refused.json()["detail"]
    finally:
        dam.process.stop()
