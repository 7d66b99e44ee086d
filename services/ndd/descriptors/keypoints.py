"""Geometric verification with ORB keypoints: the second stage of the offline descriptor.

The global windows shortlist candidates; here each candidate is checked by matching ORB keypoints
(ratio test) and fitting a similarity transform with RANSAC. A near-duplicate has many inliers
*and* the two frames cover most of each other once aligned. A partial copy has one frame wholly
inside the other: a photo pasted into a larger frame (a screenshot, a slide, a poster, picture in
picture, one photo of a collage), or the other way round. It is scored by the matched region (is
the smaller frame all there?) as long as that region is a picture in the picture, at least about a
fifth of the larger frame; a small tile (a detail cut out of a photo) still scores low.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import faiss
import numpy as np

from services.ndd.vector_index import one_omp_thread

# Longer side, in pixels, of the grey image the keypoints are detected on.
KEYPOINT_SIZE = 384
# 1000 rather than 500: a photo that is only part of a frame (a collage, a slide) keeps enough of them.
MAX_KEYPOINTS = 1000
# Below this many keypoints on either side verification says nothing (flat or tiny images).
MIN_KEYPOINTS = 24
MIN_INLIERS = 8
# Inliers at which evidence saturates (score 1 - e^-1 ~ 0.63 at this count).
INLIER_SCALE = 20.0


@dataclass(frozen=True)
class Keypoints:
    points: np.ndarray  # (n, 2) float32, pixel coordinates in the resized image
    descriptors: np.ndarray  # (n, 32) uint8 ORB descriptors
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.points)


def _grey(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    scale = KEYPOINT_SIZE / max(grey.shape[:2])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(grey, None, fx=scale, fy=scale, interpolation=interpolation)


def detect(rgb: np.ndarray) -> Keypoints:
    grey = _grey(rgb)
    orb = cv2.ORB_create(nfeatures=MAX_KEYPOINTS, fastThreshold=10)
    found, descriptors = orb.detectAndCompute(grey, None)
    points = np.array([k.pt for k in found], np.float32).reshape(-1, 2)
    if descriptors is None:
        descriptors = np.zeros((0, 32), np.uint8)
    return Keypoints(points, descriptors, grey.shape[1], grey.shape[0])


# A partial copy counts this much of a full one, so whole copies rank above pictures in pictures.
PARTIAL_WEIGHT = 0.85


def _ramp(value: float, low: float, high: float) -> float:
    return min(1.0, max(0.0, (value - low) / (high - low)))


def coverage_credit(share_ref: float, share_query: float) -> float:
    """[0, 1] credit of the aligned frames' overlap: full for mutual cover (from 55 % each way; a 30 %
    crop leaves 70 %), none under 25 %; a frame inside the other (>= 90 % of it matched) covering at
    least ~18 % of the other gets PARTIAL_WEIGHT, a small tile (<= 10 %) none."""
    small, big = min(share_ref, share_query), max(share_ref, share_query)
    mutual = _ramp(small, 0.25, 0.55)
    contained = _ramp(big, 0.6, 0.9) * _ramp(small, 0.10, 0.18)
    return max(mutual, PARTIAL_WEIGHT * contained)


def _coverage(matrix: np.ndarray, query: Keypoints, reference: Keypoints) -> tuple[float, float]:
    """(share of the reference covered by the aligned query, share of the query covered by the reference)."""

    def rect(w: int, h: int) -> np.ndarray:
        return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)

    full = np.vstack([matrix, [0, 0, 1]])
    try:
        inverse = np.linalg.inv(full)[:2]
    except np.linalg.LinAlgError:
        return 0.0, 0.0
    query_rect, ref_rect = rect(query.width, query.height), rect(reference.width, reference.height)
    query_in_ref = cv2.transform(query_rect[None], matrix)[0]
    ref_in_query = cv2.transform(ref_rect[None], inverse)[0]
    on_ref, _ = cv2.intersectConvexConvex(query_in_ref, ref_rect)
    on_query, _ = cv2.intersectConvexConvex(ref_in_query, query_rect)
    share_ref = on_ref / float(reference.width * reference.height)
    share_query = on_query / float(query.width * query.height)
    return float(share_ref), float(share_query)


def verify(query: Keypoints, reference: Keypoints) -> float | None:
    """Calibrated score in [0, 1], or None when either side has too few keypoints to tell."""
    if len(query) < MIN_KEYPOINTS or len(reference) < MIN_KEYPOINTS:
        return None
    distances, nearest = _nearest_two(query.descriptors, reference.descriptors)
    # Lowe's ratio test, and close enough at all.
    good = np.flatnonzero((nearest[:, 1] >= 0) & (distances[:, 0] < 0.8 * distances[:, 1]) & (distances[:, 0] < 64))
    if len(good) < MIN_INLIERS:
        return 0.0
    source = query.points[good]
    target = reference.points[nearest[good, 0]]
    matrix, mask = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=6.0)
    if matrix is None or mask is None:
        return 0.0
    inliers = int(mask.sum())
    if inliers < MIN_INLIERS:
        return 0.0
    coverage = coverage_credit(*_coverage(matrix, query, reference))
    return float(coverage * (1.0 - np.exp(-(inliers - MIN_INLIERS + 1) / INLIER_SCALE)))


def _nearest_two(queries: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query code, the Hamming distances and numbers of its two nearest `codes`: what OpenCV's
    `BFMatcher(NORM_HAMMING).knnMatch(k=2)` finds (the same pairs; tests/ndd), as arrays and ~4x faster (no
    DMatch object per pair: verification was about half of a query). One thread: a query verifies a dozen
    candidates of ~1,000 codes each, too little to spread over OpenMP on a busy machine."""
    index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index.add(np.ascontiguousarray(codes))
    with one_omp_thread():
        return index.search(np.ascontiguousarray(queries), 2)


def mirrored(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])
