"""The shipped Haar detector on real photos (skimage.data)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from services.annotation.face_detection.haar import HaarFaceDetector, HaarParams
from services.annotation.face_detection.nms import iou_matrix

# Eileen Collins' face in skimage.data.astronaut (512x512), checked by eye.
ASTRONAUT_FACE = (178, 69, 270, 161)
# The cameraman's turned head in skimage.data.camera.
CAMERAMAN_FACE = (175, 95, 265, 200)


@pytest.fixture(scope="module")
def detector() -> HaarFaceDetector:
    return HaarFaceDetector()


def _boxes(faces) -> np.ndarray:
    return np.array([[f.x_min, f.y_min, f.x_max, f.y_max] for f in faces]).reshape(-1, 4)


async def test_finds_the_astronauts_face(detector: HaarFaceDetector) -> None:
    faces = await detector.detect(skdata.astronaut())
    assert len(faces) == 1
    assert iou_matrix(_boxes(faces), np.array([ASTRONAUT_FACE]))[0, 0] > 0.6
    assert 0 < faces[0].score < 1


def test_profile_cascade_finds_a_turned_head(detector: HaarFaceDetector) -> None:
    camera = np.stack([skdata.camera()] * 3, axis=-1)
    assert HaarFaceDetector(HaarParams(profiles=False)).detect_sync(camera) == []
    faces = detector.detect_sync(camera)
    assert len(faces) == 1
    assert iou_matrix(_boxes(faces), np.array([CAMERAMAN_FACE]))[0, 0] > 0.4


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea"])
def test_no_faces_on_photos_without_people(detector: HaarFaceDetector, name: str) -> None:
    image = getattr(skdata, name)()
    assert detector.detect_sync(image) == []
    assert detector.detect_sync(image, max_side=320) == []


def test_max_side_downscales_but_reports_full_pixels(detector: HaarFaceDetector) -> None:
    big = cv2.resize(skdata.astronaut(), (1536, 1536), interpolation=cv2.INTER_CUBIC)
    faces = detector.detect_sync(big, max_side=512)
    expected = np.array([ASTRONAUT_FACE]) * 3
    assert len(faces) == 1
    assert iou_matrix(_boxes(faces), expected)[0, 0] > 0.6


@pytest.mark.parametrize(
    "image",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)],
)
def test_rejects_what_is_not_an_rgb_image(detector: HaarFaceDetector, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect_sync(image)
