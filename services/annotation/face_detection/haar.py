"""The Haar cascade face detector that ships with opencv-python-headless 4.x (`cv2.data.haarcascades`).

Works offline on any machine. Frontal faces come from `haarcascade_frontalface_alt2` (fewer false
positives than `_default` at the same recall); turned heads from `haarcascade_profileface`, run on the
image and on its mirror because the cascade knows one side only. The hits of all three are merged by
NMS. The image is downscaled to `max_side` first, and the smallest face searched for scales with the
detection size, so the cost per frame stays about constant whatever the video's resolution.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from services.annotation.face_detection.base import FaceBox, rgb_image
from services.annotation.face_detection.nms import nms

# The maam.json `runtime` of the repository entry that stands for these cascades (no Triton model).
HAAR_RUNTIME = "opencv-haar"
INSTALL_HINT = "pip install 'opencv-python-headless>=4,<5' (OpenCV 5 no longer ships the Haar cascades)"


class HaarCascadeMissingError(RuntimeError):
    """The OpenCV wheel in use has no Haar cascade files."""


@dataclass(frozen=True)
class HaarParams:
    scale_factor: float = 1.1
    # Profiles take two passes (image and mirror); a coarser scale step roughly halves their cost
    # and, on the test videos, finds the same turned heads as 1.1 does.
    profile_scale_factor: float = 1.2
    frontal_min_neighbors: int = 5
    # With the coarser scale step fewer windows agree on a face; 4 still finds no faces on the
    # skimage backgrounds (coffee, rocket, chelsea, hubble) while keeping turned heads.
    profile_min_neighbors: int = 4
    # Where a face is expected (seen on a nearby frame; see FaceDetector.detect), fewer windows need
    # to agree: turned heads and motion blur keep it near the threshold on some frames.
    expected_min_neighbors: int = 2
    # Smallest face, as a fraction of the longer side of the image searched (never below the
    # cascade's 20-pixel window).
    min_face_fraction: float = 1 / 40
    profiles: bool = True
    # Boxes are merged when the smaller lies this much inside the larger (same face, two cascades
    # or two scales); IoU alone keeps an inner box and the face count flickers.
    merge_overlap: float = 0.5


def _cascade(filename: str) -> cv2.CascadeClassifier:
    base = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(base or "") / filename
    if not base or not path.is_file():
        raise HaarCascadeMissingError(f"the Haar cascade {filename} is not installed; {INSTALL_HINT}")
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise HaarCascadeMissingError(f"the Haar cascade {path} could not be loaded; {INSTALL_HINT}")
    return cascade


class HaarFaceDetector:
    """FaceDetector on OpenCV's shipped cascades; thread-safe per call (a cascade per thread)."""

    name = "haar-frontalface"

    def __init__(self, params: HaarParams | None = None) -> None:
        self.params = params or HaarParams()
        # Fail at construction, with the install hint, rather than on the first frame.
        _cascade("haarcascade_frontalface_alt2.xml")
        if self.params.profiles:
            _cascade("haarcascade_profileface.xml")
        self._local = _ThreadCascades(self.params.profiles)

    async def detect(
        self,
        image_rgb: np.ndarray,
        max_side: int | None = None,
        *,
        sizes: tuple[float, float] | None = None,
        expected: bool = False,
    ) -> list[FaceBox]:
        return await asyncio.to_thread(self.detect_sync, image_rgb, max_side, sizes=sizes, expected=expected)

    def detect_sync(
        self,
        image_rgb: np.ndarray,
        max_side: int | None = None,
        *,
        sizes: tuple[float, float] | None = None,
        expected: bool = False,
    ) -> list[FaceBox]:
        image = rgb_image(image_rgb)
        height, width = image.shape[:2]
        scale = 1.0
        if max_side and max(height, width) > max_side:
            scale = max_side / max(height, width)
            image = cv2.resize(
                image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
            )
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        boxes, scores = self._detect_gray(
            gray, None if sizes is None else (sizes[0] * scale, sizes[1] * scale), expected
        )
        if not boxes:
            return []
        keep = nms(np.array(boxes), np.array(scores), self.params.merge_overlap, overlap="iomin")
        inv = 1.0 / scale
        return [
            FaceBox(
                x_min=float(np.clip(boxes[i][0] * inv, 0, width)),
                y_min=float(np.clip(boxes[i][1] * inv, 0, height)),
                x_max=float(np.clip(boxes[i][2] * inv, 0, width)),
                y_max=float(np.clip(boxes[i][3] * inv, 0, height)),
                score=float(scores[i]),
            )
            for i in keep
        ]

    def _detect_gray(
        self, gray: np.ndarray, sizes: tuple[float, float] | None = None, expected: bool = False
    ) -> tuple[list[tuple[float, float, float, float]], list[float]]:
        p = self.params
        min_side = max(20, round(max(gray.shape) * p.min_face_fraction))
        max_size: tuple[int, int] = (0, 0)  # OpenCV: no limit
        if sizes is not None:
            # Small windows are most of the work: searching only the sizes sought saves most of it.
            min_side = max(min_side, int(sizes[0]))
            largest = int(np.ceil(sizes[1]))
            if largest >= min_side:
                max_size = (largest, largest)
        boxes: list[tuple[float, float, float, float]] = []
        scores: list[float] = []

        def run(cascade: cv2.CascadeClassifier, img: np.ndarray, neighbors: int, mirrored: bool) -> None:
            found, counts = cascade.detectMultiScale2(
                img,
                scaleFactor=p.profile_scale_factor if cascade is not frontal else p.scale_factor,
                minNeighbors=neighbors,
                minSize=(min_side, min_side),
                maxSize=max_size,
            )
            for (x, y, w, h), count in zip(np.reshape(found, (-1, 4)), np.ravel(counts), strict=True):
                x0 = gray.shape[1] - (x + w) if mirrored else x
                boxes.append((float(x0), float(y), float(x0 + w), float(y + h)))
                # Haar gives no probability; more agreeing windows = more certain. Monotone, in (0, 1).
                scores.append(float(1.0 - np.exp(-float(count) / 10.0)))

        frontal, profile = self._local.get()
        frontal_neighbors = p.expected_min_neighbors if expected else p.frontal_min_neighbors
        profile_neighbors = p.expected_min_neighbors if expected else p.profile_min_neighbors
        run(frontal, gray, frontal_neighbors, False)
        if profile is not None:
            run(profile, gray, profile_neighbors, False)
            run(profile, np.ascontiguousarray(gray[:, ::-1]), profile_neighbors, True)
        return boxes, scores


class _ThreadCascades:
    """`CascadeClassifier` objects are not safe to share between threads; keep one set per thread."""

    def __init__(self, profiles: bool) -> None:
        self._profiles = profiles
        self._tls = threading.local()

    def get(self) -> tuple[cv2.CascadeClassifier, cv2.CascadeClassifier | None]:
        cached = getattr(self._tls, "cascades", None)
        if cached is None:
            profile = _cascade("haarcascade_profileface.xml") if self._profiles else None
            cached = (_cascade("haarcascade_frontalface_alt2.xml"), profile)
            self._tls.cascades = cached
        return cached
