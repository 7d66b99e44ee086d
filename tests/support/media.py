"""Test media made on the fly: encoded photos, small videos, hand-made PNG headers."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable

import av
import numpy as np
from PIL import Image


def encode_image(rgb: np.ndarray, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def text_frame(lines: list[str], side: int = 256, size: int = 40) -> np.ndarray:
    """Black print on white, `side` pixels square (a video's shots are square): a frame OCR can read."""
    from PIL import ImageDraw, ImageFont

    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size)
    for i, line in enumerate(lines):
        draw.text((12, 30 + i * int(size * 1.6)), line, fill="black", font=font)
    return np.asarray(image)


def make_video(frames: Iterable[np.ndarray], fps: int = 10, codec: str = "libx264", container: str = "mp4") -> bytes:
    """Encodes RGB frames (all the same even size) into a video file's bytes."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = None
        for frame in frames:
            if stream is None:
                stream = out.add_stream(codec, rate=fps)
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb_header(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG signature and IHDR declaring width x height, with a tiny IDAT: what a
    decompression bomb looks like before its pixels are inflated."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def pad_mp4(video: bytes, size: int) -> bytes:
    """`video` (an MP4) grown to `size` bytes by a trailing top-level `free` box, which players skip: a
    large video whose few frames still decode quickly."""
    padding = size - len(video) - 8
    if padding < 0:
        raise ValueError(f"the video is already {len(video)} bytes")
    return video + struct.pack(">I4s", padding + 8, b"free") + bytes(padding)
