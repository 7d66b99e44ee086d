"""Decoding untrusted media: sniffing by content, decompression bombs, corrupt files, videos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as photos

from services.common.media import (
    DEFAULT_MAX_PIXELS,
    MediaError,
    apply_media_settings,
    decode_image,
    iter_video_frames,
    media_kind,
    open_image,
    pixel_limit,
    probe_video,
    sniff_media_type,
)
from services.common.settings import MediaSettings
from tests.support.media import encode_image, make_video, png_bomb_header


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    return encode_image(photos.astronaut(), "JPEG", quality=90)


@pytest.fixture(scope="module")
def small_video() -> bytes:
    frames = [np.full((64, 96, 3), i * 8, np.uint8) for i in range(20)]
    return make_video(frames, fps=10)


def test_sniffs_types_from_bytes_not_names(astronaut_jpeg: bytes, small_video: bytes) -> None:
    rgb = photos.chelsea()
    assert sniff_media_type(astronaut_jpeg) == "image/jpeg"
    assert sniff_media_type(encode_image(rgb, "PNG")) == "image/png"
    assert sniff_media_type(encode_image(rgb, "WEBP")) == "image/webp"
    assert sniff_media_type(encode_image(rgb, "GIF")) == "image/gif"
    assert sniff_media_type(small_video) == "video/mp4"
    assert sniff_media_type(b"ply\nformat ascii 1.0\n") == "model/ply"
    assert sniff_media_type(b"OFF\n3 1 0\n") == "model/off"
    assert sniff_media_type(b"solid cube\nfacet normal 0 0 1\n") == "model/stl"
    assert sniff_media_type(b"# a comment\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n") == "model/obj"
    assert sniff_media_type(b"glTF\x02\x00\x00\x00") == "model/gltf-binary"
    assert sniff_media_type(b"just some text") is None
    assert media_kind("image/png") == "image" and media_kind("video/mp4") == "video"
    assert media_kind("model/obj") == "model3d" and media_kind(None) is None


def test_decodes_a_photo(astronaut_jpeg: bytes) -> None:
    rgb = decode_image(astronaut_jpeg)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    assert abs(float(rgb.mean()) - float(photos.astronaut().mean())) < 2


def test_truncated_jpeg_is_a_clear_error(astronaut_jpeg: bytes) -> None:
    with pytest.raises(MediaError, match="corrupt or truncated image/jpeg"):
        decode_image(astronaut_jpeg[: len(astronaut_jpeg) // 2])


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(MediaError, match="decompression bomb"):
        decode_image(png_bomb_header(20000, 20000))


def test_empty_and_garbage_bytes() -> None:
    with pytest.raises(MediaError, match="empty"):
        decode_image(b"")
    with pytest.raises(MediaError, match="not an image format"):
        decode_image(b"hello, this is not an image")


def test_probes_and_samples_a_video(small_video: bytes) -> None:
    info = probe_video(small_video)
    assert (info.width, info.height) == (96, 64)
    assert info.fps == pytest.approx(10)
    assert info.frame_count == 20
    assert info.duration == pytest.approx(2.0, abs=0.15)
    assert info.codec == "h264" and not info.has_audio
    every = list(iter_video_frames(small_video))
    assert [i for i, _, _ in every] == list(range(20))
    sampled = list(iter_video_frames(small_video, every_seconds=0.5))
    assert [round(t, 2) for _, t, _ in sampled] == [0.0, 0.5, 1.0, 1.5]
    assert sampled[0][2].shape == (64, 96, 3)


def test_bad_videos_are_clear_errors(small_video: bytes) -> None:
    with pytest.raises(MediaError, match="empty"):
        probe_video(b"")
    with pytest.raises(MediaError):
        probe_video(b"\x00" * 4096)
    with pytest.raises(MediaError, match=r"no video stream|could not"):
        list(iter_video_frames(b"RIFF\x24\x00\x00\x00WAVEfmt "))


def test_configured_pixel_limit_applies(astronaut_jpeg: bytes) -> None:
    with pytest.raises(MediaError, match="512x512 pixels, over the 100,000-pixel limit"):
        decode_image(astronaut_jpeg, max_pixels=100_000)


@pytest.fixture
def pillow_limit():
    """Restores the process-wide limit a test changes."""
    before = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = before


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")  # one bit per pixel: 95 Mpx in 12 MB, 11 KB on disk
    return buffer.getvalue()


def test_maam_s_limit_is_the_one_in_force_not_pillow_s(pillow_limit) -> None:
    """Pillow refuses images over its own 89.5 Mpx default even when MAAM allows 100 Mpx: importing the media
    helpers puts MAAM's default in force, and a 95 Mpx image opens (it used to fail as a bomb)."""
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS == MediaSettings().max_image_pixels
    assert pixel_limit() == 100_000_000
    image = open_image(_png(9_500, 10_000))
    assert image.size == (9_500, 10_000)


def test_the_configured_limit_is_pillow_s_too(pillow_limit) -> None:
    """apply_media_settings (each service at startup) sets the limit for MAAM's helpers and for Pillow itself."""
    apply_media_settings(MediaSettings(max_image_pixels=1_000))
    small, big = _png(30, 30), _png(40, 40)
    assert open_image(small).size == (30, 30)
    with pytest.raises(MediaError, match="40x40 pixels, over the 1,000-pixel limit"):
        open_image(big)
    with pytest.raises(Image.DecompressionBombError):  # plain Pillow, as a library would call it
        Image.open(io.BytesIO(_png(50, 50)))
