"""Following a face the detector lost between two window checks: template matching (OpenCV's
normalised cross-correlation) of the face as last seen, around where its motion puts it, at a few
scales. A DNN detector misses some turned, mirrored or shrinking faces on some checks; a face it
found once is then followed, not searched for blind, for up to FOLLOW_CHECKS checks in a row.

Works on the grey detection-size frame the pipeline converts anyway (no extra decoding or scaling).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# A face may be followed (not found by the detector) on this many window checks in a row.
FOLLOW_CHECKS = 3
# Least normalised correlation of the face's template with the new frame that counts as the face.
MIN_SCORE = 0.7
# Template scales tried: faces grow and shrink between checks.
SCALES = (0.8, 0.9, 1.0, 1.1, 1.25)
# The search region: the predicted box grown by this many face sizes on each side.
SEARCH_REACH = 1.0
# A followed face ends when less than this share of its box is inside the frame (it left).
MIN_INSIDE = 0.3
# Templates smaller than this (grey pixels on a side) carry too little to match.
MIN_TEMPLATE = 12
# A face is not followed across a shot cut: the frame's coarse grey layout must still correlate this much
# with the frame its template came from (else some textured patch of the next shot could match it).
MIN_SCENE = 0.5
SCENE_SIDE = 32


@dataclass
class Followed:
    """A face of the last window check: its box (full-frame pixels), its grey patch at detection
    size, its motion per frame (full-frame pixels) and how many checks in a row only followed it."""

    box: np.ndarray
    patch: np.ndarray
    velocity: np.ndarray  # (dx, dy) per frame
    misses: int = 0
    scene: np.ndarray | None = None  # scene_of() the frame the patch came from (None: not known)


def scene_of(gray: np.ndarray) -> np.ndarray:
    """A frame's coarse layout: its grey thumbnail, zero-mean and unit-norm (a dot product compares two)."""
    small = cv2.resize(gray, (SCENE_SIDE, SCENE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    return small / max(float(np.linalg.norm(small)), 1e-6)


def patch_of(gray: np.ndarray, box: np.ndarray, scale: tuple[float, float]) -> np.ndarray | None:
    """The grey patch under a full-frame box on a detection-size frame (None: too small / outside)."""
    sx, sy = scale
    x0, y0 = max(0, int(box[0] / sx)), max(0, int(box[1] / sy))
    x1, y1 = min(gray.shape[1], int(np.ceil(box[2] / sx))), min(gray.shape[0], int(np.ceil(box[3] / sy)))
    if x1 - x0 < MIN_TEMPLATE or y1 - y0 < MIN_TEMPLATE:
        return None
    return np.ascontiguousarray(gray[y0:y1, x0:x1])


def inside_share(box: np.ndarray, width: int, height: int) -> float:
    w, h = box[2] - box[0], box[3] - box[1]
    iw = max(0.0, min(width, box[2]) - max(0.0, box[0]))
    ih = max(0.0, min(height, box[3]) - max(0.0, box[1]))
    return float(iw * ih / max(w * h, 1e-9))


def same_shot(face: Followed, scene: np.ndarray) -> bool:
    """Whether a frame (its scene_of()) still shows the shot the face was detected in (unknown: the same)."""
    return face.scene is None or float(face.scene @ scene) >= MIN_SCENE


def follow(
    face: Followed, gray: np.ndarray, frames: int, scale: tuple[float, float], size: tuple[int, int],
    scene: np.ndarray | None = None,
) -> tuple[np.ndarray, float] | None:
    """The face's box on `gray` (a detection-size frame `frames` frames after the face's), and the
    match score; None when no place matches well enough, it left the frame (width, height = size) or the
    frame is another shot (`scene`: scene_of(gray), when the caller has it already)."""
    sx, sy = scale
    width, height = size
    if not same_shot(face, scene_of(gray) if scene is None else scene):
        return None
    moved = face.box + np.tile(face.velocity * frames, 2)
    if inside_share(moved, width, height) < MIN_INSIDE and inside_share(face.box, width, height) < MIN_INSIDE:
        return None
    side = max(moved[2] - moved[0], moved[3] - moved[1])
    reach = SEARCH_REACH * side
    # The region searched, in detection pixels: the predicted box and the last one, grown by reach.
    rx0 = max(0, int((min(moved[0], face.box[0]) - reach) / sx))
    ry0 = max(0, int((min(moved[1], face.box[1]) - reach) / sy))
    rx1 = min(gray.shape[1], int(np.ceil((max(moved[2], face.box[2]) + reach) / sx)))
    ry1 = min(gray.shape[0], int(np.ceil((max(moved[3], face.box[3]) + reach) / sy)))
    region = gray[ry0:ry1, rx0:rx1]
    best: tuple[float, int, int, int, int] | None = None
    for factor in SCALES:
        tw, th = round(face.patch.shape[1] * factor), round(face.patch.shape[0] * factor)
        if tw < MIN_TEMPLATE or th < MIN_TEMPLATE or tw > region.shape[1] or th > region.shape[0]:
            continue
        template = cv2.resize(face.patch, (tw, th), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
        if float(template.std()) < 1.0:
            continue  # a flat patch matches anything
        scores = cv2.matchTemplate(region, template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (x, y) = cv2.minMaxLoc(scores)
        if best is None or score > best[0]:
            best = (float(score), x, y, tw, th)
    if best is None or best[0] < MIN_SCORE:
        return None
    score, x, y, tw, th = best
    box = np.array([(rx0 + x) * sx, (ry0 + y) * sy, (rx0 + x + tw) * sx, (ry0 + y + th) * sy])
    if inside_share(box, width, height) < MIN_INSIDE:
        return None
    return box, score
