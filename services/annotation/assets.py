"""Getting a request's asset: exactly one of URL or bytes, fetched safely, decoded with the checks
of services.common.media. Every failure is an AssetError carrying the gRPC status to answer with."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np

from services.common.fetch import FetchError, ForbiddenURLError, TooLargeError, fetch_url
from services.common.media import MediaError, decode_image, media_kind, sniff_media_type
from services.common.settings import MediaSettings


class AssetError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> AssetError:
    return AssetError(grpc.StatusCode.INVALID_ARGUMENT, message)


async def asset_bytes(url: str, data: bytes, settings: MediaSettings, field: str = "asset") -> bytes:
    """The asset's bytes from exactly one of `<field>_url` / `<field>_data`."""
    if url and data:
        raise invalid(f"set either {field}_url or {field}_data, not both")
    if not url and not data:
        raise invalid(f"no {field}: set {field}_url or {field}_data")
    if data:
        return data
    try:
        return await fetch_url(url, settings)
    except (ForbiddenURLError, TooLargeError) as exc:
        raise invalid(str(exc)) from exc
    except FetchError as exc:
        raise AssetError(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc


def _expect(data: bytes, kind: str) -> None:
    found = media_kind(sniff_media_type(data))
    if found is not None and found != kind:
        what = {"model3d": "a 3D model"}.get(found, f"an {found}" if found == "image" else f"a {found}")
        raise invalid(f"expected {'an' if kind == 'image' else 'a'} {kind}, but the data is {what}")


async def load_image(data: bytes, settings: MediaSettings) -> np.ndarray:
    """RGB uint8 (H, W, 3); decoding (and the bomb check) runs off the event loop."""
    if not data:
        raise invalid("the image is empty (0 bytes)")
    _expect(data, "image")
    try:
        return await asyncio.to_thread(decode_image, data, settings.max_image_pixels)
    except MediaError as exc:
        raise invalid(str(exc)) from exc


def check_video(data: bytes) -> None:
    if not data:
        raise invalid("the video is empty (0 bytes)")
    _expect(data, "video")
