"""ArcFace's 5-point face alignment (InsightFace `face_align.norm_crop`): the similarity transform
(rotation, uniform scale, translation; least squares, Umeyama 1991) taking the detector's five
landmarks (eyes, nose tip, mouth corners, as SCRFD gives them) onto ArcFace's 112 x 112 template,
then the warp with a black border. scikit-image (InsightFace's choice) is a dev dependency here, so
the closed form is written out; tests/annotation/models/test_face_align.py checks it against it."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

ALIGNMENT = "arcface_5pt"
# InsightFace's arcface_dst: left eye, right eye, nose, left and right mouth corner at 112 x 112.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64,
)


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 least-squares similarity transform taking points `src` onto `dst` (Umeyama)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    variance = src_c.var(axis=0).sum()
    scale = (s * d).sum() / variance if variance > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def arcface_matrix(landmarks: Sequence[Sequence[float]], size: int = 112) -> np.ndarray:
    """The warp of `norm_crop` for five landmarks in image pixels, for a size x size crop
    (a multiple of 112, as InsightFace's estimate_norm supports)."""
    points = np.asarray(landmarks, np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"ArcFace alignment needs 5 (x, y) landmarks, got shape {points.shape}")
    if size % 112:
        raise ValueError(f"ArcFace alignment crops are a multiple of 112 pixels, not {size}")
    return similarity_matrix(points, ARCFACE_TEMPLATE * (size / 112.0))


def align_arcface(rgb: np.ndarray, landmarks: Sequence[Sequence[float]], size: int = 112) -> np.ndarray:
    """The aligned size x size face crop (uint8 RGB), outside the image black."""
    return cv2.warpAffine(rgb, arcface_matrix(landmarks, size), (size, size), borderValue=0.0)
