"""A face's picture: its box (with a margin) cut from the image, or from the video's keyframe."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from services.common.media import MediaError, iter_video_frames, open_image

MARGIN = 0.25  # of the box size on each side: the face with some head and hair, as people pages show it


def face_crop(blob: Path, kind: str, box: list[float], frame_index: int | None, size: int = 160) -> bytes:
    if kind == "image":
        image = open_image(blob.read_bytes()).convert("RGB")
    elif kind == "video":
        wanted = frame_index or 0
        frame = next((f for i, _, f in iter_video_frames(blob) if i >= wanted), None)
        if frame is None:
            raise MediaError("the video has no frame there")
        image = Image.fromarray(frame)
    else:
        raise MediaError(f"no face pictures for {kind} assets")
    w, h = image.size
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * MARGIN, (y1 - y0) * MARGIN
    area = (max(0, int((x0 - mx) * w)), max(0, int((y0 - my) * h)),
            min(w, int((x1 + mx) * w) + 1), min(h, int((y1 + my) * h) + 1))
    face = image.crop(area)
    face.thumbnail((size, size))
    out = io.BytesIO()
    face.save(out, "JPEG", quality=85)
    return out.getvalue()
