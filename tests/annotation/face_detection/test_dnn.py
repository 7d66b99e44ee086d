"""SCRFD decoding through the real ONNX Runtime backend, on tiny graphs with SCRFD's layout
(tests/annotation/face_detection/scrfd_graph.py). They are not face detectors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from services.annotation.face_detection.dnn import (
    FaceModelError,
    ScrfdFaceDetector,
    ScrfdParams,
    anchor_centers,
    decode_scrfd,
)
from services.annotation.face_detection.factory import open_face_detector
from services.annotation.face_detection.nms import iou_matrix
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelNotFoundError, ModelRepository
from services.common.settings import Settings
from tests.annotation.face_detection.scrfd_graph import write_model


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> ModelRepository:
    root = tmp_path_factory.mktemp("scrfd_repo")
    write_model(root, "scrfd_controlled", "controlled")
    write_model(root, "scrfd_random", "random")
    write_model(root, "not_faces", "random", task="object_detection")
    (root / "scrfd_missing").mkdir()
    write_model(root, "scrfd_missing", "random")
    (root / "scrfd_missing" / "1" / "model.onnx").unlink()
    return ModelRepository(root)


@pytest.fixture
async def backend(repository: ModelRepository) -> AsyncIterator[OnnxBackend]:
    async with OnnxBackend(repository, workers=1) as onnx_backend:
        yield onnx_backend


async def test_decodes_box_and_landmarks_through_the_letterbox(backend: OnnxBackend, repository) -> None:
    detector = ScrfdFaceDetector.from_repository("scrfd_controlled", backend, repository)
    # 128x96 is letterboxed into 64x64 at scale 0.5 (64x48, padded at the bottom). The white
    # 16x16 square becomes the 8x8 cell at row 4, column 2 of stride 8: anchor (16, 32), box one
    # stride around it, landmarks at the graph's fixed offsets.
    image = np.zeros((96, 128, 3), np.uint8)
    image[64:80, 32:48] = 255
    faces = await detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert (face.x_min, face.y_min, face.x_max, face.y_max) == pytest.approx((16, 48, 48, 80))
    assert face.score > 0.99
    assert np.allclose(face.landmarks, [(32, 64), (48, 64), (40, 72), (32, 80), (48, 80)])
    assert await detector.detect(np.zeros((96, 128, 3), np.uint8)) == []


async def test_random_weights_run_end_to_end(backend: OnnxBackend, repository) -> None:
    detector = ScrfdFaceDetector.from_repository("scrfd_random", backend, repository)
    image = np.random.default_rng(3).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    faces = await detector.detect(image)
    assert faces, "the seeded random graph scores some anchors above 0.5"
    boxes = np.array([[f.x_min, f.y_min, f.x_max, f.y_max] for f in faces])
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 200).all() and (boxes[:, 3] <= 120).all()
    assert all(f.score >= 0.5 and len(f.landmarks) == 5 for f in faces)
    overlaps = iou_matrix(boxes, boxes) - np.eye(len(boxes))
    assert overlaps.max() <= 0.4 + 1e-6, "NMS leaves no two boxes overlapping past its threshold"


def test_anchor_order_is_y_then_x_then_anchor() -> None:
    centers = anchor_centers(2, 3, 8, 2)
    assert centers.tolist() == [[0, 0], [0, 0], [8, 0], [8, 0], [16, 0], [16, 0],
                                [0, 8], [0, 8], [8, 8], [8, 8], [16, 8], [16, 8]]


def test_outputs_are_recognised_by_shape_whatever_their_names() -> None:
    params = ScrfdParams(input_size=(32, 32))
    outputs = {}
    for k, stride in enumerate((8, 16, 32)):
        rows = (32 // stride) ** 2 * 2
        outputs[f"s{k}"] = np.zeros((rows, 1), np.float32)
        outputs[f"b{k}"] = np.ones((1, rows, 4), np.float32)  # a batched export
    outputs["s0"][5, 0] = 0.9  # stride 8, cell (0, 2), anchor 1
    boxes, scores, kps = decode_scrfd(outputs, 32, 32, params)
    assert boxes.tolist() == [[8, -8, 24, 8]]
    assert scores.tolist() == pytest.approx([0.9])
    assert kps.shape == (1, 5, 2)
    with pytest.raises(FaceModelError, match="not an SCRFD head"):
        decode_scrfd({**outputs, "odd": np.zeros((7, 4), np.float32)}, 32, 32, params)
    with pytest.raises(FaceModelError, match="stride 32"):
        decode_scrfd({k: v for k, v in outputs.items() if k != "b2"}, 32, 32, params)


async def test_a_model_of_another_task_is_refused(backend: OnnxBackend, repository) -> None:
    with pytest.raises(FaceModelError, match="object_detection"):
        ScrfdFaceDetector.from_repository("not_faces", backend, repository)
    with pytest.raises(ModelNotFoundError, match="maam models"):
        ScrfdFaceDetector.from_repository("scrfd_missing", backend, repository)


async def test_factory_opens_the_dnn_detector_by_default_haar_without_one_and_models_by_name(
    repository, tmp_path: Path
) -> None:
    async with open_face_detector(None, Settings(model_repository=tmp_path)) as detector:
        assert detector.name == "haar-frontalface"  # no DNN face detector installed: Haar
    settings = Settings(model_repository=Path(repository.root))
    async with open_face_detector(None, settings) as detector:
        assert detector.name.startswith("scrfd_")  # an installed DNN detector is the default
    async with open_face_detector("haar", settings) as detector:
        assert detector.name == "haar-frontalface"
    async with open_face_detector("scrfd_controlled", settings) as detector:
        assert detector.name == "scrfd_controlled"
        image = np.zeros((64, 64, 3), np.uint8)
        image[8:16, 8:16] = 255
        assert len(await detector.detect(image)) == 1
    with pytest.raises(ModelNotFoundError):
        async with open_face_detector("no_such_model", settings):
            pass


async def test_an_expected_face_may_score_lower(backend: OnnxBackend, repository) -> None:
    detector = ScrfdFaceDetector.from_repository("scrfd_random", backend, repository)
    image = np.random.default_rng(3).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    normal = await detector.detect(image)
    expected = await detector.detect(image, expected=True)
    assert all(f.score >= 0.5 for f in normal)
    assert len(expected) > len(normal), "anchors between 0.3 and 0.5 count where a face is expected"
    assert min(f.score for f in expected) >= 0.5 * 0.6 - 1e-6
    # The search sizes change nothing for a one-pass network.
    assert await detector.detect(image, sizes=(10, 20)) == normal
