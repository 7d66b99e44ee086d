"""Face boxes between checked frames: matching, interpolation, safety margins, 360° wrap-around.

Boxes are float arrays (K, 4) of x_min, y_min, x_max, y_max in full-frame pixels. In an
equirectangular frame of width W a box is kept with its centre in [0, W); it may then reach below
0 or past W, which means it continues on the other side of the seam.
"""

from __future__ import annotations

import numpy as np

EMPTY = np.zeros((0, 4), np.float64)

# Each side of a blurred box grows by this fraction of the face's larger side: detectors jitter
# by ~10 % from frame to frame and hair, ears and chin are identifying too.
MARGIN = 0.2
# An interpolated box also grows by this fraction of the distance the face moved between the two
# checked frames that bound it, in case the motion was not linear.
MOTION_MARGIN = 0.25


def as_boxes(values: object) -> np.ndarray:
    boxes = np.asarray(values, np.float64).reshape(-1, 4)
    return boxes if boxes.size else EMPTY


def centers(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def sizes(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def canonical(boxes: np.ndarray, wrap_width: float | None) -> np.ndarray:
    """Shifts equirectangular boxes by whole widths so that their centres lie in [0, W)."""
    if wrap_width is None or not len(boxes):
        return boxes
    shift = np.floor(centers(boxes)[:, 0] / wrap_width) * wrap_width
    out = boxes.copy()
    out[:, 0] -= shift
    out[:, 2] -= shift
    return out


def dx_matrix(a: np.ndarray, b: np.ndarray, wrap_width: float | None) -> np.ndarray:
    """Horizontal centre offsets b - a (matrix), the short way round the seam when wrapping."""
    d = centers(b)[None, :, 0] - centers(a)[:, None, 0]
    if wrap_width is not None:
        d = (d + wrap_width / 2) % wrap_width - wrap_width / 2
    return d


def match(a: np.ndarray, b: np.ndarray, wrap_width: float | None = None) -> list[tuple[int, int]] | None:
    """One-to-one pairs (i, j) of the same faces in two checked frames, or None when the two frames
    do not show the same faces (a face appeared, left, or moved too far to tell)."""
    if len(a) != len(b):
        return None
    if not len(a):
        return []
    pairs = pairs_nearby(a, b, wrap_width)
    return pairs if len(pairs) == len(a) else None


def pairs_nearby(
    a: np.ndarray, b: np.ndarray, wrap_width: float | None = None, reach: float = 1.0
) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs of boxes close enough to be the same face (centre moved by at most
    `reach` face sizes), nearest first."""
    if not len(a) or not len(b):
        return []
    dx = dx_matrix(a, b, wrap_width)
    dy = centers(b)[None, :, 1] - centers(a)[:, None, 1]
    distance = np.hypot(dx, dy)
    size_a, size_b = sizes(a)[:, None], sizes(b)[None, :]
    # Same face: centre moved by at most `reach` sizes, and the size changed by at most 2x.
    ok = (distance <= reach * np.maximum(size_a, size_b)) & (size_b <= 2 * size_a) & (size_a <= 2 * size_b)
    pairs: list[tuple[int, int]] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for flat in np.argsort(np.where(ok, distance, np.inf), axis=None):
        i, j = divmod(int(flat), len(b))
        if not ok[i, j]:
            break
        if i in used_a or j in used_b:
            continue
        pairs.append((i, j))
        used_a.add(i)
        used_b.add(j)
    return pairs


def unpaired(a: np.ndarray, b: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """The boxes of a and of b that are in no pair."""
    left = [i for i in range(len(a)) if i not in {p for p, _ in pairs}]
    right = [j for j in range(len(b)) if j not in {q for _, q in pairs}]
    return as_boxes(np.concatenate([a[left], b[right]])) if left or right else EMPTY


def interpolate(
    a: np.ndarray,
    b: np.ndarray,
    pairs: list[tuple[int, int]],
    t: float,
    wrap_width: float | None = None,
    motion_margin: bool = True,
) -> np.ndarray:
    """Boxes at fraction t in (0, 1) of the way from checked frame a to checked frame b, grown by
    the motion margin unless told not to."""
    if not pairs:
        return EMPTY
    ia = np.array([i for i, _ in pairs])
    ib = np.array([j for _, j in pairs])
    start, end = a[ia].copy(), b[ib].copy()
    if wrap_width is not None:
        # Move the far box by whole widths so the face takes the short way across the seam.
        d = dx_matrix(start, end, wrap_width).diagonal()
        shift = centers(start)[:, 0] + d - centers(end)[:, 0]
        end[:, 0] += shift
        end[:, 2] += shift
    boxes = start + (end - start) * t
    motion = np.abs(centers(end) - centers(start)) * (MOTION_MARGIN if motion_margin else 0.0)
    boxes[:, 0] -= motion[:, 0]
    boxes[:, 2] += motion[:, 0]
    boxes[:, 1] -= motion[:, 1]
    boxes[:, 3] += motion[:, 1]
    return canonical(boxes, wrap_width)


def with_margin(boxes: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    if not len(boxes):
        return EMPTY
    grow = sizes(boxes)[:, None] * margin
    return boxes + np.concatenate([-grow, -grow, grow, grow], axis=1)


def snap_to_edges(boxes: np.ndarray, width: int, height: int, wrap: bool, margin: float = MARGIN) -> np.ndarray:
    """Extends boxes that come within `margin` of a face size of the frame's edge to that edge: a
    face entering or leaving the picture is only partly detected, and its detected box jitters
    most there. A 360° frame has no left and right edges."""
    if not len(boxes):
        return EMPTY
    out = boxes.copy()
    near = sizes(boxes) * margin
    if not wrap:
        out[out[:, 0] < near, 0] = 0
        out[out[:, 2] > width - near, 2] = width
    out[out[:, 1] < near, 1] = 0
    out[out[:, 3] > height - near, 3] = height
    return out


def overlaps_any(box: np.ndarray, boxes: np.ndarray, wrap_width: float | None = None) -> bool:
    """Whether box intersects any of boxes (across the seam when wrapping)."""
    if not len(boxes):
        return False
    shifts = [0.0] if wrap_width is None else [0.0, -wrap_width, wrap_width]
    for shift in shifts:
        x0, x1 = box[0] + shift, box[2] + shift
        hit = (boxes[:, 0] < x1) & (x0 < boxes[:, 2]) & (boxes[:, 1] < box[3]) & (box[1] < boxes[:, 3])
        if hit.any():
            return True
    return False


def covered(box: np.ndarray, boxes: np.ndarray, wrap_width: float | None = None, share: float = 0.9) -> bool:
    """Whether one of boxes covers at least `share` of box's area (across the seam when wrapping)."""
    if not len(boxes):
        return False
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    shifts = [0.0] if wrap_width is None else [0.0, -wrap_width, wrap_width]
    for shift in shifts:
        x0, x1 = box[0] + shift, box[2] + shift
        w = np.clip(np.minimum(boxes[:, 2], x1) - np.maximum(boxes[:, 0], x0), 0, None)
        h = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
        if (w * h >= share * area).any():
            return True
    return False


def merge_overlapping(boxes: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Boxes of one frame with those that overlap by `share` of the smaller one replaced by their
    union: a face found on this frame and the same face lent from a neighbour become one box."""
    out = [b.copy() for b in boxes]
    merged = True
    while merged and len(out) > 1:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                w = min(a[2], b[2]) - max(a[0], b[0])
                h = min(a[3], b[3]) - max(a[1], b[1])
                smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                if w > 0 and h > 0 and w * h >= share * smaller:
                    out[i] = np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])])
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return as_boxes(out)


def pixel_regions(box: np.ndarray, width: int, height: int, wrap: bool) -> list[tuple[int, int, int, int]]:
    """Integer x0, y0, x1, y1 rectangles inside the frame that cover box (two across a 360° seam)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    top, bottom = max(0, int(np.floor(y0))), min(height, int(np.ceil(y1)))
    if bottom <= top:
        return []
    spans: list[tuple[float, float]] = [(x0, x1)]
    if wrap:
        spans = [(x0, x1), (x0 + width, x1 + width), (x0 - width, x1 - width)]
    regions = []
    for s0, s1 in spans:
        left, right = max(0, int(np.floor(s0))), min(width, int(np.ceil(s1)))
        if right > left:
            regions.append((left, top, right, bottom))
    return regions
