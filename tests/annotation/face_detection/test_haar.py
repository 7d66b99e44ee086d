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


def test_sizes_limit_the_search_to_the_faces_sought(detector: HaarFaceDetector) -> None:
    image = skdata.astronaut()
    side = ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0]
    around = detector.detect_sync(image, sizes=(0.6 * side, 1.7 * side))
    assert len(around) == 1
    assert iou_matrix(_boxes(around), np.array([ASTRONAUT_FACE]))[0, 0] > 0.6
    # Sought among small faces only, the astronaut's is not searched for.
    small = detector.detect_sync(image, sizes=(20, 0.5 * side))
    assert all(f.x_max - f.x_min <= 0.5 * side + 1 for f in small)
    assert not any(iou_matrix(_boxes([f]), np.array([ASTRONAUT_FACE]))[0, 0] > 0.3 for f in small)


def test_an_expected_face_needs_fewer_agreeing_windows(detector: HaarFaceDetector) -> None:
    """A face at the edge of what the cascades find (the cameraman's turned head, shrunk and
    dimmed) is lost at the normal threshold and kept when it is expected there; what the normal
    threshold finds, the expected search finds too."""
    camera = np.stack([skdata.camera()] * 3, axis=-1)
    region = camera[40:260, 120:330]
    weak = None
    for scale in (0.5, 0.45, 0.4, 0.35, 0.3):
        small = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if not detector.detect_sync(small) and detector.detect_sync(small, expected=True):
            weak = small
            break
    assert weak is not None, "some size of the turned head is found only as an expected face"
    for image in (skdata.astronaut(), camera):
        normal = _boxes(detector.detect_sync(image))
        expected = _boxes(detector.detect_sync(image, expected=True))
        assert len(expected) >= len(normal)
        assert all(iou_matrix(box[None], expected).max() > 0.5 for box in normal)
