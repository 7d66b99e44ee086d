"""JPEG thumbnails of images and videos (first frame), cached by content hash and size."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from services.common.media import MediaError, iter_video_frames, open_image

SIZES = (128, 256, 512)


def thumbnail(blob: Path, kind: str, size: int, cache: Path, sha256: str) -> bytes:
    """The cached thumbnail, else one made from the blob (a video is decoded from its file up to its
    first frame, never read whole)."""
    target = cache / f"{sha256}_{size}.jpg"
    if target.exists():
        return target.read_bytes()
    if kind == "image":
        image = open_image(blob.read_bytes())
    elif kind == "video":
        frame = next((f for _, _, f in iter_video_frames(blob)), None)
        if frame is None:
            raise MediaError("the video has no decodable frame")
        image = Image.fromarray(frame)
    else:
        raise MediaError(f"no thumbnail for {kind} assets")
    image = image.convert("RGB")
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(out.getvalue())
    tmp.replace(target)
    return out.getvalue()
