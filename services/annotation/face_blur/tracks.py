"""The face track summary of a blurred video: boxes of consecutive frames linked into tracks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from services.annotation.face_blur.boxes import dx_matrix, centers, sizes

NormBox = tuple[float, float, float, float]


@dataclass
class FaceTrack:
    """One face over consecutive frames. Boxes are normalised to [0, 1] of the frame; on a 360°
    video a box that crosses the left/right seam has x_min > x_max (it wraps around)."""

    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    boxes: list[tuple[int, NormBox]] = field(default_factory=list)


def normalise(box: np.ndarray, width: int, height: int, wrap: bool) -> NormBox:
    x0, y0, x1, y1 = (float(v) for v in box)
    ny0, ny1 = min(max(y0 / height, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0)
    if wrap and (x1 - x0) < width:
        return ((x0 / width) % 1.0, ny0, (x1 / width) % 1.0 or 1.0, ny1)
    return (min(max(x0 / width, 0.0), 1.0), ny0, min(max(x1 / width, 0.0), 1.0), ny1)


class TrackBuilder:
    """Links each frame's boxes to the tracks alive on the frame before (nearest centre first)."""

    def __init__(self, width: int, height: int, wrap: bool) -> None:
        self.width, self.height, self.wrap = width, height, wrap
        self.tracks: list[FaceTrack] = []
        self._alive: list[tuple[FaceTrack, np.ndarray]] = []

    def add(self, index: int, time_s: float, boxes: np.ndarray) -> None:
        alive = [(t, b) for t, b in self._alive if t.end_frame == index - 1]
        taken: dict[int, int] = {}
        if alive and len(boxes):
            last = np.stack([b for _, b in alive])
            wrap_width = float(self.width) if self.wrap else None
            dx = dx_matrix(last, boxes, wrap_width)
            dy = centers(boxes)[None, :, 1] - centers(last)[:, None, 1]
            distance = np.hypot(dx, dy)
            limit = np.maximum(sizes(last)[:, None], sizes(boxes)[None, :])
            for flat in np.argsort(distance, axis=None):
                i, j = divmod(int(flat), len(boxes))
                if distance[i, j] > limit[i, j]:
                    break
                if i not in taken.values() and j not in taken:
                    taken[j] = i
        next_alive: list[tuple[FaceTrack, np.ndarray]] = []
        for j, box in enumerate(boxes):
            if j in taken:
                track = alive[taken[j]][0]
            else:
                track = FaceTrack(index, index, time_s, time_s)
                self.tracks.append(track)
            track.end_frame, track.end_time = index, time_s
            track.boxes.append((index, normalise(box, self.width, self.height, self.wrap)))
            next_alive.append((track, box))
        self._alive = next_alive
