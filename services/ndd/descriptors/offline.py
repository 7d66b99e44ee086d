"""The offline image descriptor: no learned weights, robust to the usual near-duplicate edits.

Stage 1 (global, FAISS): each image is described by the low-frequency DCT coefficients (a
real-valued pHash, DC dropped and L2-normalised, so brightness and contrast changes cancel) of many
windows: the whole image and sub-windows covering 85, 70 and 50 % of each side at several
positions. A reference stores every window; a query uses its whole frame, two centred windows, its
halves and its quadrants, so a query cropped out of a reference meets the reference window that
covers about the same area, and a caption or logo spoils only some query windows. A horizontal
flip only changes the sign of the coefficients with an odd horizontal frequency, so the mirrored
query costs one multiplication, not a re-encode.

Stage 2 (`score`): shortlisted references are verified with ORB keypoints (keypoints.py), which
turns "looks alike" into calibrated evidence of "is a copy".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy.fft import dctn

from services.ndd.descriptors.calibration import calibrate
from services.ndd.descriptors.keypoints import MIN_KEYPOINTS, Keypoints, detect, mirrored, verify

NAME = "offline"


@dataclass(frozen=True)
class OfflineParams:
    # Grey image is resized so its longer side is this many pixels before windows are cut.
    base_size: int = 256
    # Each window is resampled to this square before the DCT.
    grid: int = 32
    # Kept coefficients: the top-left `keep` x `keep` block, minus DC.
    keep: int = 8
    # Pre-blur sigma in grid pixels: tolerance to small rotations and misaligned windows.
    blur: float = 1.0
    # Per axis: (window length as fraction of the side, number of positions).
    axis_windows: tuple[tuple[float, int], ...] = ((1.0, 1), (0.85, 3), (0.7, 3), (0.5, 2))
    # Centred query windows (fraction of each side): the inner ones drop rotation corners, borders
    # and most captions or corner logos.
    query_windows: tuple[float, ...] = (1.0, 0.8, 0.65)
    # Query halves and quadrants: each avoids a caption band or a logo elsewhere in the image.
    query_halves: bool = True


DEFAULT = OfflineParams()


def _to_grey(rgb: np.ndarray, base_size: int) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    height, width = grey.shape[:2]
    scale = base_size / max(height, width)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    return cv2.resize(grey.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def _axis_spans(length: int, params: OfflineParams) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for fraction, positions in params.axis_windows:
        span = max(4, round(length * fraction))
        slack = length - span
        for i in range(positions):
            start = round(slack * i / (positions - 1)) if positions > 1 else slack // 2
            spans.append((start, start + span))
    return spans


def _flip_signs(params: OfflineParams) -> np.ndarray:
    # dctn index [v, u]: u is the horizontal frequency; a mirror negates odd u.
    _v, u = np.meshgrid(np.arange(params.keep), np.arange(params.keep), indexing="ij")
    signs = np.where(u % 2 == 1, -1.0, 1.0).astype(np.float32).ravel()
    return signs[1:]


def _describe_window(window: np.ndarray, params: OfflineParams) -> np.ndarray:
    small = cv2.resize(window, (params.grid, params.grid), interpolation=cv2.INTER_AREA)
    if params.blur > 0:
        small = cv2.GaussianBlur(small, (0, 0), params.blur)
    coeffs = dctn(small, norm="ortho")[: params.keep, : params.keep].ravel()[1:]
    return coeffs.astype(np.float32)


@lru_cache(maxsize=8)
def _blur_dct(params: OfflineParams) -> np.ndarray:
    """(keep, grid) matrix M with M @ X @ M.T == the kept DCT block of the blurred grid X: blur and DCT
    are both linear and separable, so a whole stack of windows costs two matrix products instead of
    a blur and a DCT call per window (most of an image's indexing time before)."""
    dct = dctn(np.eye(params.grid), type=2, norm="ortho", axes=0)[: params.keep]  # rows: 1-D DCT basis
    if params.blur <= 0:
        return dct.astype(np.float64)
    # Column j: the 1-D blur (as cv2.GaussianBlur does it, border included) of an impulse at j.
    impulses = np.zeros((params.grid, params.grid, params.grid), np.float32)
    for j in range(params.grid):
        impulses[j, :, j] = 1.0
    blurred = np.stack([cv2.GaussianBlur(impulse, (0, 0), params.blur)[0] for impulse in impulses], axis=1)
    return dct @ blurred.astype(np.float64)


@lru_cache(maxsize=1024)
def _span_matrix(length: int, spans: tuple[tuple[int, int], ...], params: OfflineParams) -> np.ndarray:
    """(len(spans) * keep, length): for each span, the area resize of that span to `grid` samples (as
    cv2.resize INTER_AREA does it, a linear map) followed by the blur + DCT rows of _blur_dct."""
    matrix = np.zeros((len(spans) * params.keep, length), np.float64)
    blur_dct = _blur_dct(params)
    for number, (start, end) in enumerate(spans):
        # Row i of the resize matrix: cv2's resize of the span's identity columns, one axis only.
        resize = cv2.resize(np.eye(end - start, dtype=np.float32), (end - start, params.grid),
                            interpolation=cv2.INTER_AREA).astype(np.float64)
        matrix[number * params.keep : (number + 1) * params.keep, start:end] = blur_dct @ resize
    return matrix


def _describe_windows(windows: list[np.ndarray], params: OfflineParams) -> np.ndarray:
    """(len(windows), dim) descriptors, the same as _describe_window of each (to float rounding)."""
    smalls = np.stack([cv2.resize(w, (params.grid, params.grid), interpolation=cv2.INTER_AREA) for w in windows])
    matrix = _blur_dct(params)
    blocks = matrix @ smalls.astype(np.float64) @ matrix.T
    return blocks.reshape(len(windows), -1)[:, 1:].astype(np.float32)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-6)


def dimension(params: OfflineParams = DEFAULT) -> int:
    return params.keep * params.keep - 1


def describe_reference(rgb: np.ndarray, params: OfflineParams = DEFAULT) -> np.ndarray:
    """(windows, dim) unit vectors describing an indexed image; row 0 is the whole image."""
    grey = _to_grey(rgb, params.base_size)
    rows = tuple(_axis_spans(grey.shape[0], params))
    cols = tuple(_axis_spans(grey.shape[1], params))
    if min(grey.shape) < 2 * params.grid:
        # Some windows are enlarged to the grid: cv2's INTER_AREA is then bilinear on both axes, which
        # the per-axis matrices do not model; such thin images take the per-window path.
        return _normalise(_describe_windows([grey[r0:r1, c0:c1] for r0, r1 in rows for c0, c1 in cols], params))
    # Every window (row span x column span) at once: resize, blur and DCT are linear and separable, so
    # left @ grey @ right.T holds the kept DCT block of each window (what _describe_windows gives).
    left = _span_matrix(grey.shape[0], rows, params)
    right = _span_matrix(grey.shape[1], cols, params)
    keep = params.keep
    blocks = (left @ grey.astype(np.float64) @ right.T).reshape(len(rows), keep, len(cols), keep)
    vectors = blocks.transpose(0, 2, 1, 3).reshape(len(rows) * len(cols), keep * keep)[:, 1:]
    return _normalise(vectors.astype(np.float32))


def describe_query(rgb: np.ndarray, params: OfflineParams = DEFAULT) -> np.ndarray:
    """(2 * len(query_windows), dim) unit vectors of a query image: its centred windows as given,
    then mirrored."""
    grey = _to_grey(rgb, params.base_size)
    height, width = grey.shape
    windows = []
    for fraction in params.query_windows:
        h, w = max(4, round(height * fraction)), max(4, round(width * fraction))
        y, x = (height - h) // 2, (width - w) // 2
        windows.append(grey[y : y + h, x : x + w])
    if params.query_halves:
        half_h, half_w = max(4, height // 2), max(4, width // 2)
        top, bottom, left, right = slice(0, half_h), slice(height - half_h, height), slice(0, half_w), slice(
            width - half_w, width)
        windows += [grey[top], grey[bottom], grey[:, left], grey[:, right]]
        # Quadrants: a logo or sticker anywhere leaves at least two of them clean.
        windows += [grey[rows, cols] for rows in (top, bottom) for cols in (left, right)]
    vectors = _normalise(_describe_windows(windows, params))
    return np.concatenate([vectors, vectors * _flip_signs(params)[None, :]])


def describe_frame(rgb: np.ndarray, params: OfflineParams = DEFAULT) -> np.ndarray:
    """(dim,) unit vector of a whole video frame (videos are matched frame to frame, unflipped)."""
    return describe_query(rgb, params)[0]


# ------------------------------------------------------------------ two-stage: windows + keypoints
# Shortlist: items with the best global windows plus items with the most keypoint votes, all
# re-scored by keypoint verification.
SHORTLIST = 40
VOTE_SHORTLIST = 20
# Only this many shortlisted items, taken alternately from the best global and the most-voted, are
# verified (verification is most of a query's cost); the rest keep their unverified score.
VERIFIED = 12
# A mirrored copy is looked for only when the query as given does not verify this well.
MIRROR_BELOW = 0.5
# Weight of the global score when both sides have keypoints but they do not agree geometrically.
UNVERIFIED_WEIGHT = 0.25


@dataclass(frozen=True)
class OfflineFeatures:
    """What is stored for one indexed image."""

    windows: np.ndarray  # (windows, dim) unit vectors; row 0 is the whole image
    keypoints: Keypoints


@dataclass(frozen=True)
class OfflineQuery:
    vectors: np.ndarray  # (queries, dim)
    keypoints: Keypoints
    mirrored_keypoints: Keypoints


def extract(rgb: np.ndarray) -> OfflineFeatures:
    return OfflineFeatures(describe_reference(rgb), detect(rgb))


def prepare_query(rgb: np.ndarray, keypoints: Keypoints | None = None) -> OfflineQuery:
    """The query form of an image; `keypoints` when they were already detected on this same image
    (indexing stores both forms, and ORB detection is a good part of an image's cost)."""
    return OfflineQuery(describe_query(rgb), keypoints if keypoints is not None else detect(rgb),
                        detect(mirrored(rgb)))


def unverified_score(cosine: float) -> float:
    """The score of a reference left unverified, for a query with keypoints: `score(check=False)`, which
    then does not depend on the reference."""
    return UNVERIFIED_WEIGHT * calibrate(NAME, cosine)


def score(query: OfflineQuery, cosine: float, reference: Keypoints, check: bool = True) -> float:
    """Calibrated [0, 1] score of one shortlisted reference (best window cosine given); `check=False`
    skips the keypoint verification (the score an unverified candidate keeps)."""
    global_score = calibrate(NAME, cosine)
    verified: list[float] = []
    if check:
        direct = verify(query.keypoints, reference)
        mirror = verify(query.mirrored_keypoints, reference) if direct is None or direct < MIRROR_BELOW else None
        verified = [v for v in (direct, mirror) if v is not None]
    elif len(query.keypoints) >= MIN_KEYPOINTS and len(reference) >= MIN_KEYPOINTS:
        return UNVERIFIED_WEIGHT * global_score
    if not verified:
        # Too few keypoints to tell: fine when both images are flat, suspicious when only one is.
        both_flat = len(query.keypoints) < MIN_KEYPOINTS and len(reference) < MIN_KEYPOINTS
        return global_score if both_flat else UNVERIFIED_WEIGHT * global_score
    return max(max(verified), UNVERIFIED_WEIGHT * global_score)
