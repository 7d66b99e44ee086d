"""Decoding media from untrusted bytes: type sniffing from content, images with a decompression
bomb check, videos with PyAV. Every failure is a MediaError with a message for people."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from services.common.settings import MediaSettings

DEFAULT_MAX_PIXELS = 100_000_000
# Pillow refuses (or warns about) images over its own process-wide limit, 89.5 Mpx unless told otherwise:
# MAAM's limit is the one in force, from import on and then from the settings (apply_media_settings).
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS


def apply_media_settings(settings: MediaSettings) -> None:
    """Makes `MAAM_MEDIA__MAX_IMAGE_PIXELS` the decompression-bomb limit of every image this process
    opens, through MAAM's helpers or through Pillow directly (each service calls it at startup)."""
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels


def pixel_limit() -> int:
    """The limit in force (Pillow's, set from the settings)."""
    return int(Image.MAX_IMAGE_PIXELS or DEFAULT_MAX_PIXELS)


class MediaError(ValueError):
    """Unsupported, corrupt or dangerous media (maps to INVALID_ARGUMENT / HTTP 4xx)."""


_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)

MODEL_3D_TYPES = {"obj", "off", "ply", "stl", "glb", "gltf"}


def sniff_media_type(data: bytes) -> str | None:
    """The MIME type that the bytes themselves declare (never the file name); None if unknown."""
    head = data[:64]
    for magic, mime in _IMAGE_MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1"):
            return "image/heic"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in data[:256] else "video/x-matroska"
    if head.startswith(b"OggS"):
        return "video/ogg"
    if head[:4] == b"glTF":
        return "model/gltf-binary"
    if head.startswith(b"ply\n") or head.startswith(b"ply\r\n"):
        return "model/ply"
    if head.startswith(b"OFF"):
        return "model/off"
    if head.startswith(b"solid") or _looks_like_binary_stl(data):
        return "model/stl"
    text = data[:2048].lstrip()
    if text.startswith(b"{") and b'"asset"' in data[:4096]:
        return "model/gltf+json"
    if any(line.startswith((b"v ", b"f ", b"vn ", b"o ", b"mtllib")) for line in text.splitlines()[:50]):
        return "model/obj"
    return None


def _looks_like_binary_stl(data: bytes) -> bool:
    if len(data) < 84:
        return False
    count = int.from_bytes(data[80:84], "little")
    return len(data) == 84 + 50 * count and count > 0


def media_kind(mime: str | None) -> str | None:
    """'image', 'video', 'model3d' or None."""
    if not mime:
        return None
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("model/"):
        return "model3d"
    return None


def open_image(data: bytes, max_pixels: int | None = None) -> Image.Image:
    """Opens and fully decodes an image, refusing decompression bombs before decoding pixels.
    `max_pixels` defaults to the limit in force (`pixel_limit()`)."""
    if not data:
        raise MediaError("the image is empty (0 bytes)")
    max_pixels = max_pixels or pixel_limit()
    try:
        with warnings.catch_warnings():
            # The size check below is the limit (with a message for people); Pillow's own warning, at
            # its process-wide limit, must not refuse an image first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise MediaError(
                    f"the image is {width}x{height} pixels, over the {max_pixels:,}-pixel limit "
                    "(decompression bomb protection)"
                )
            image.load()
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(f"the image is too large to decode safely (decompression bomb protection): {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        kind = sniff_media_type(data)
        what = f"a corrupt or truncated {kind}" if kind else "not an image format that can be read"
        raise MediaError(f"the image could not be decoded: {what} ({exc})") from exc
    return ImageOps.exif_transpose(image)


def decode_image(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """RGB uint8 array (H, W, 3) of an image's bytes."""
    return np.asarray(open_image(data, max_pixels).convert("RGB"))


@dataclass(frozen=True)
class VideoProbe:
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    codec: str
    has_audio: bool


# A video in memory, or a file read as it is decoded (a blob need not be read whole to be probed).
VideoSource = bytes | Path


def open_video_container(data: VideoSource):
    """A PyAV input container with a video stream, or a MediaError saying why not."""
    import av

    source: io.BytesIO | str
    if isinstance(data, bytes):
        empty, source = not data, io.BytesIO(data)
    else:
        empty, source = data.stat().st_size == 0, str(data)
    if empty:
        raise MediaError("the video is empty (0 bytes)")
    try:
        container = av.open(source, mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"the video could not be opened: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise MediaError("the file has no video stream")
    return container


def probe_video(data: VideoSource) -> VideoProbe:
    container = open_video_container(data)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        if not duration and container.duration:
            duration = container.duration / 1_000_000
        frames = int(stream.frames or round(duration * fps))
        return VideoProbe(
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            fps=fps,
            frame_count=frames,
            duration=duration,
            codec=str(stream.codec_context.name),
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def iter_video_frames(data: VideoSource, every_seconds: float | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yields (frame_index, time_s, rgb) of every frame, or of one frame per `every_seconds`."""
    import av

    container = open_video_container(data)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_time = 0.0
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                time_s = float(frame.time) if frame.time is not None else 0.0
                if every_seconds is not None:
                    if time_s + 1e-6 < next_time:
                        continue
                    next_time = time_s + every_seconds
                yield index, time_s, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            if index < 0:
                raise MediaError(f"the video could not be decoded: {exc}") from exc
            # A truncated tail: the frames decoded so far are still good.
    finally:
        container.close()
