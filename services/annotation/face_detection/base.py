"""The face detector interface: Haar (ships with OpenCV) by default, a DNN detector when installed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# Where a face is expected (FaceDetector.detect), DNN scores down to this share of their threshold count.
EXPECTED_SCORE_FACTOR = 0.6


def rgb_image(image_rgb: np.ndarray) -> np.ndarray:
    """The detectors' input check: an RGB uint8 image (H, W, 3), else a ValueError saying what came."""
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    return image


@dataclass(frozen=True)
class FaceBox:
    """A face in PIXEL coordinates of the image passed to `detect` (x to the right, y down)."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    score: float
    # (x, y) pixel points: eyes, nose, mouth corners, when the detector gives them.
    landmarks: tuple[tuple[float, float], ...] = field(default=())


class FaceDetector(Protocol):
    """Finds faces in an RGB uint8 image (H, W, 3)."""

    # The name reported in responses (a repository model name, or e.g. "haar-frontalface").
    name: str

    async def detect(
        self,
        image_rgb: np.ndarray,
        max_side: int | None = None,
        *,
        sizes: tuple[float, float] | None = None,
        expected: bool = False,
    ) -> list[FaceBox]:
        """Faces in image_rgb; when max_side is set the detector may work on a copy downscaled so
        that its longer side is max_side (faster, misses tiny faces), boxes still in full pixels.
        `sizes` (smallest, largest face side in pixels of image_rgb) says which faces are sought,
        when the caller knows (a known face checked again): the detector may search only those
        (Haar then skips the other scales, most of its cost) and may still return others.
        `expected`: a face was seen here on a nearby frame, so weaker evidence counts (a track is
        continued on low-confidence detections, as ByteTrack does): fewer agreeing Haar windows,
        a lower DNN score."""
        ...
