"""What an upload must be before it is stored: a known type (from its bytes) that decodes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.common.media import MediaError, iter_video_frames, media_kind, open_image, probe_video, sniff_media_type


@dataclass
class Checked:
    mime: str
    kind: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None


class UnsupportedTypeError(ValueError):
    pass


def check_media(head: bytes, path: Path, max_pixels: int) -> Checked:
    """Sniffs the type from the first bytes and fully decodes images/probes videos (truncation, bombs).
    Raises UnsupportedTypeError (415) or MediaError (422)."""
    mime = sniff_media_type(head)
    kind = media_kind(mime)
    if mime is None or kind is None:
        raise UnsupportedTypeError(
            "unsupported file type: the bytes are not an image, video or 3D model this service reads "
            "(JPEG, PNG, GIF, WebP, BMP, TIFF, MP4/MOV, WebM/MKV, AVI, OGG, glTF/GLB, OBJ, PLY, STL, OFF)")
    if kind == "image":
        image = open_image(path.read_bytes(), max_pixels)
        return Checked(mime, kind, width=image.width, height=image.height)
    if kind == "video":  # decoded from the file, never read whole
        probe = probe_video(path)
        if next(iter_video_frames(path), None) is None:
            raise MediaError("the video has no decodable frame (corrupt or truncated)")
        return Checked(mime, kind, width=probe.width, height=probe.height, duration=probe.duration)
    if path.stat().st_size == 0:
        raise MediaError("the file is empty")
    return Checked(mime, kind)
