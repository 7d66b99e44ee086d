"""ArcFace's input: faces aligned on SCRFD's five landmarks with the 112 x 112 similarity transform,
equal within a pixel to InsightFace's `face_align.norm_crop` (its code: scikit-image's
SimilarityTransform.estimate onto arcface_dst, cv2.warpAffine with a black border) on scikit-image's
astronaut; and the face pipelines with the pulled ArcFace sidecar: Haar (no landmarks) still embeds
box crops, a five-landmark detector embeds the aligned crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.transform import SimilarityTransform

from services.annotation.face_detection.base import FaceBox
from services.annotation.faces import FacePipeline, default_haar_detector
from services.annotation.models.embedding import ImageEmbedder
from services.annotation.models.face_align import align_arcface, arcface_matrix
from services.annotation.models.preprocess import crop
from services.common.inference.onnx_backend import OnnxBackend
from services.common.model_repository import ModelRepository
from services.models.export.faces import install_faces
from tests.models.test_faces_pull import _arcface_like, _scrfd_like

ASTRONAUT = data.astronaut()
# The astronaut's eyes, nose tip and mouth corners (image pixels, marked by hand), SCRFD's order.
LANDMARKS = np.array([(202.5, 101.0), (247.5, 104.0), (222.5, 124.0), (206.0, 142.5), (242.5, 144.0)])
# InsightFace python-package/insightface/utils/face_align.py
ARCFACE_DST = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                        [70.7299, 92.2041]], dtype=np.float32)


def insightface_norm_crop(img: np.ndarray, landmark: np.ndarray, image_size: int = 112) -> tuple:
    """estimate_norm + norm_crop as InsightFace publishes them (arcface mode, sizes % 112 == 0)."""
    ratio = float(image_size) / 112.0
    dst = ARCFACE_DST * ratio
    tform = SimilarityTransform.from_estimate(landmark, dst)
    matrix = tform.params[0:2, :]
    return cv2.warpAffine(img, matrix, (image_size, image_size), borderValue=0.0), matrix


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize("size", [112, 224])
def test_alignment_equals_insightfaces_norm_crop(size: int) -> None:
    want, reference = insightface_norm_crop(ASTRONAUT, LANDMARKS, size)
    got = align_arcface(ASTRONAUT, LANDMARKS, size)
    ours = arcface_matrix(LANDMARKS, size)
    # Where each landmark (and each corner of the face) lands: within a pixel of InsightFace's.
    probe = np.vstack([LANDMARKS, [[150, 50], [300, 50], [150, 220], [300, 220]]])
    assert np.abs(_apply(ours, probe) - _apply(reference, probe)).max() < 1.0
    assert got.shape == want.shape == (size, size, 3)
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 1.0  # grey levels
    # The box crop stretched to the input (what was embedded before) puts the eyes elsewhere.
    box = (185 / 512, 70 / 512, 265 / 512, 170 / 512)
    h, w = crop(ASTRONAUT, box).shape[:2]
    stretched = (LANDMARKS - [185, 70]) * [size / w, size / h]
    assert np.abs(stretched - _apply(reference, LANDMARKS)).max() > 5.0


def test_alignment_needs_five_points() -> None:
    with pytest.raises(ValueError, match="5"):
        arcface_matrix(LANDMARKS[:4])


class FivePointDetector:
    """A detector reporting the astronaut's face with its five landmarks (SCRFD's output; its weights
    cannot be downloaded here)."""

    name = "five_points"

    async def detect(self, image_rgb, max_side=None, *, sizes=None, expected=False) -> list[FaceBox]:
        return [FaceBox(185, 70, 265, 170, 0.9, tuple(map(tuple, LANDMARKS)))]


@pytest.fixture()
def arcface(tmp_path: Path):
    repo_dir = tmp_path / "repo"
    install_faces(repo_dir, _scrfd_like(tmp_path / "det.onnx"), _arcface_like(tmp_path / "rec.onnx"),
                  source="test", license="test")
    repository = ModelRepository(repo_dir)
    return ImageEmbedder(repository.get_installed("arcface_r50"), OnnxBackend(repository))


async def test_haar_pipeline_embeds_with_the_pulled_arcface_sidecar(arcface) -> None:
    haar = default_haar_detector()
    assert haar is not None
    faces = await FacePipeline(haar, arcface).faces(ASTRONAUT)
    assert faces and all(f.embedding is not None and f.embedding.values.shape == (512,) for f in faces)
    assert all(abs(float(np.linalg.norm(f.embedding.values)) - 1) < 1e-5 for f in faces)


async def test_five_landmark_faces_are_embedded_aligned(arcface) -> None:
    faces = await FacePipeline(FivePointDetector(), arcface).faces(ASTRONAUT)
    aligned = (await arcface.embed([align_arcface(ASTRONAUT, LANDMARKS)]))[0].values
    boxed = (await arcface.embed([crop(ASTRONAUT, faces[0].box)]))[0].values
    assert np.allclose(faces[0].embedding.values, aligned, atol=1e-5)
    assert not np.allclose(aligned, boxed, atol=1e-3)
