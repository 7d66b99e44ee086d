"""BlazeFace-family face detectors (Bazarevsky et al., 2019): MediaPipe's short-range face detector
(`mediapipe` 0.10.x ships it as TFLite) and the TFJS BlazeFace models, served from the model
repository (task `face_detection`, params `format: "blazeface"`) through any `InferenceBackend`.

The graph takes one [1, S, S, 3] RGB input scaled to [-1, 1] (the image letterboxed into the square,
centred, black padding). It scores a fixed set of SSD anchors: per anchor layer (stride, anchors per
cell), a grid of S/stride x S/stride cells, rows ordered (y, x, anchor), the anchor at the cell
centre. For each anchor it gives a logit and 16 regressions in input pixels: box centre offset
(x, y), box size (w, h), then six key points (eyes, nose, mouth, ears) as offsets.

The short-range model finds faces that fill at least ~1/8 of its square; smaller ones (a person in
a wide shot) are found on tiles: besides the whole image, `tile_levels` levels of overlapping
square tiles, each level's tiles half the side of the one before (level 1: 3 x 3 tiles of half the
longer side), down to `min_tile` pixels. All squares go through the graph in one batch and their
faces are merged by NMS (a face cut by a tile border lies inside the whole one).

Sidecar params: `input_size`, `anchors` ([[stride, per_cell], ...]), `score_outputs` and
`box_outputs` (output names, concatenated in anchor order), `score_threshold`, `nms_iou`,
`tile_levels`, `min_tile`, `tile_score_threshold`, `expected_score_threshold`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from services.annotation.face_detection.base import EXPECTED_SCORE_FACTOR, FaceBox, rgb_image
from services.annotation.face_detection.nms import nms
from services.common.inference.base import InferenceBackend, InferenceError
from services.common.model_repository import ModelSpec

FORMAT = "blazeface"


class BlazeFaceModelError(InferenceError):
    """The repository model cannot serve as a BlazeFace detector (wrong outputs or params)."""


@dataclass(frozen=True)
class BlazeFaceParams:
    input_size: int
    anchors: tuple[tuple[int, int], ...]
    score_outputs: tuple[str, ...]
    box_outputs: tuple[str, ...]
    score_threshold: float = 0.5
    nms_iou: float = 0.3
    tile_levels: int = 0
    min_tile: int = 192
    # A tile sees a small part of the scene: texture scores higher there than on the whole image.
    tile_score_threshold: float = 0.75
    # Where a face is expected (a track continued): the whole-image threshold drops to this (tiles keep
    # theirs). None: EXPECTED_SCORE_FACTOR x score_threshold.
    expected_score_threshold: float | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> BlazeFaceParams:
        raw: dict[str, Any] = spec.meta.params
        try:
            return cls(
                input_size=int(raw["input_size"]),
                anchors=tuple((int(s), int(n)) for s, n in raw["anchors"]),
                score_outputs=tuple(raw["score_outputs"]),
                box_outputs=tuple(raw["box_outputs"]),
                score_threshold=float(raw.get("score_threshold", 0.5)),
                nms_iou=float(raw.get("nms_iou", 0.3)),
                tile_levels=int(raw.get("tile_levels", 0)),
                min_tile=int(raw.get("min_tile", 192)),
                tile_score_threshold=float(raw.get("tile_score_threshold", 0.75)),
                expected_score_threshold=(
                    None if raw.get("expected_score_threshold") is None else float(raw["expected_score_threshold"])
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BlazeFaceModelError(f"model {spec.name!r}: maam.json params lack a valid {exc}") from exc


def anchor_centres(size: int, anchors: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(N, 2) anchor centres in input pixels, in the order the graph scores them."""
    parts = []
    for stride, per_cell in anchors:
        grid = size // stride
        ys, xs = np.mgrid[:grid, :grid]
        centres = (np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) + 0.5) * stride
        parts.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(parts)


def decode_blazeface(
    logits: np.ndarray, regressions: np.ndarray, centres: np.ndarray, threshold: float, iou: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes xyxy, scores, key points (K, 6, 2)) in input pixels, after NMS."""
    logits = np.asarray(logits, np.float32).reshape(-1)
    regressions = np.asarray(regressions, np.float32).reshape(len(logits), -1)
    if len(logits) != len(centres) or regressions.shape[1] < 4:
        raise BlazeFaceModelError(
            f"the model scores {len(logits)} anchors with {regressions.shape[1]} values each; its params "
            f"describe {len(centres)} anchors with at least 4"
        )
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
    keep = np.flatnonzero(scores >= threshold)
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32)
    reg, centre = regressions[keep], centres[keep]
    cx, cy = centre[:, 0] + reg[:, 0], centre[:, 1] + reg[:, 1]
    w, h = reg[:, 2], reg[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    points = reg[:, 4:16].reshape(len(keep), -1, 2) + centre[:, None, :] if reg.shape[1] >= 16 else \
        np.zeros((len(keep), 0, 2), np.float32)
    valid = (w > 0) & (h > 0)
    boxes, scores, points = boxes[valid], scores[keep][valid], points[valid]
    order = nms(boxes, scores, iou)
    return boxes[order], scores[order], points[order]


class BlazeFaceDetector:
    """FaceDetector on a BlazeFace graph of the repository, on any InferenceBackend."""

    def __init__(self, backend: InferenceBackend, spec: ModelSpec) -> None:
        self.backend = backend
        self.spec = spec
        self.name = spec.name
        self.params = BlazeFaceParams.from_spec(spec)
        self.input_name = spec.config.input[0].name
        self.centres = anchor_centres(self.params.input_size, self.params.anchors)

    def windows(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """Squares (x0, y0, side) the graph looks at: the whole image, then the tile levels."""
        squares = [(0, 0, max(height, width))]
        side = max(height, width)
        for _ in range(self.params.tile_levels):
            side //= 2
            if side < self.params.min_tile:
                break
            xs = _positions(width, side)
            ys = _positions(height, side)
            squares += [(x, y, side) for y in ys for x in xs]
        return squares

    def preprocess(self, image_rgb: np.ndarray, square: tuple[int, int, int]) -> tuple[np.ndarray, float]:
        """The [S, S, 3] tensor of one square (the image part at its top-left, black beyond the
        image's edge) and the scale from image to input pixels."""
        size = self.params.input_size
        x0, y0, side = square
        part = image_rgb[y0 : y0 + side, x0 : x0 + side]
        scale = size / side
        new_w, new_h = max(1, round(part.shape[1] * scale)), max(1, round(part.shape[0] * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(part, (new_w, new_h), interpolation=interpolation)
        return canvas.astype(np.float32) / 127.5 - 1.0, scale

    async def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (B, N) and regressions (B, N, 16) of a batch of squares."""
        p = self.params
        if self.spec.max_batch_size > 0 or len(batch) == 1:
            outs = [await self.backend.infer(self.name, {self.input_name: batch})]
        else:  # a graph with a fixed batch of one
            outs = [await self.backend.infer(self.name, {self.input_name: item[None]}) for item in batch]
        try:
            logits = np.concatenate(
                [np.concatenate([np.asarray(o[n]).reshape(-1) for n in p.score_outputs]) for o in outs]
            ).reshape(len(batch), -1)
            regressions = np.concatenate(
                [np.concatenate([np.asarray(o[n]).reshape(-1, 16) for n in p.box_outputs]) for o in outs]
            ).reshape(len(batch), -1, 16)
        except KeyError as exc:
            raise BlazeFaceModelError(f"model {self.name!r} gave no output {exc}; it gave {sorted(outs[0])}") from exc
        return logits, regressions

    async def detect(
        self,
        image_rgb: np.ndarray,
        max_side: int | None = None,
        *,
        sizes: tuple[float, float] | None = None,
        expected: bool = False,
    ) -> list[FaceBox]:
        # The input is a small fixed square: max_side changes nothing; known face sizes skip the tiles.
        image = rgb_image(image_rgb)
        height, width = image.shape[:2]
        squares = self.windows(height, width)
        if sizes is not None:
            squares = [s for s in squares if s[2] <= 8 * max(sizes[1], 1.0)] or squares[:1]
        prepared = [self.preprocess(image, square) for square in squares]
        logits, regressions = await self._run(np.stack([t for t, _ in prepared]))
        p = self.params
        whole_threshold = p.score_threshold
        if expected:
            whole_threshold = (EXPECTED_SCORE_FACTOR * p.score_threshold if p.expected_score_threshold is None
                               else p.expected_score_threshold)
        whole = max(height, width)
        all_boxes, all_scores, all_points = [], [], []
        for (x0, y0, side), (_, scale), logit, reg in zip(squares, prepared, logits, regressions, strict=True):
            threshold = whole_threshold if side == whole else p.tile_score_threshold
            boxes, scores, points = decode_blazeface(logit, reg, self.centres, threshold, self.params.nms_iou)
            all_boxes.append(boxes / scale + [x0, y0, x0, y0])
            all_scores.append(scores)
            all_points.append(points / scale + [x0, y0])
        boxes, scores, points = np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_points)
        faces = []
        for i in nms(boxes, scores, 0.5, overlap="iomin") if len(boxes) else []:
            x0, y0, x1, y1 = boxes[i]
            x0, x1 = float(np.clip(x0, 0, width)), float(np.clip(x1, 0, width))
            y0, y1 = float(np.clip(y0, 0, height)), float(np.clip(y1, 0, height))
            if x1 > x0 and y1 > y0:
                landmarks = tuple((float(x), float(y)) for x, y in points[i])
                faces.append(FaceBox(x0, y0, x1, y1, float(scores[i]), landmarks))
        return faces


def _positions(length: int, side: int) -> list[int]:
    """Tile origins along one axis: tiles of `side` overlapping by half, the last flush with the edge."""
    if length <= side:
        return [0]
    count = int(np.ceil((length - side) / (side / 2))) + 1
    return sorted({round(float(v)) for v in np.linspace(0, length - side, count)})
