"""An SCRFD face detector (Guo et al., 2021; the model of source document 3.4.1) served from the
model repository (task `face_detection`) through an `InferenceBackend` (ONNX Runtime or Triton).

SCRFD's ONNX export (insightface `det_500m`, `det_2.5g`, `det_10g`, ...) has one input
(1, 3, H, W) of RGB scaled as (pixel - 127.5) / 128, and per feature stride (8, 16, 32) three
outputs with 2 anchors per location: scores (N, 1), box distances (N, 4) and five landmark offsets
(N, 10), all in units of the stride, rows ordered (y, x, anchor). Outputs are recognised by shape,
not by name or order, since exports name them by node number. Sidecar `params` (all optional):
`input_size` (int or [w, h]), `score_threshold` (0.5), `nms_threshold` (0.4), `mean`, `std`,
`strides`, `num_anchors`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from services.annotation.face_detection.base import EXPECTED_SCORE_FACTOR, FaceBox, rgb_image
from services.annotation.face_detection.nms import nms
from services.common.inference.base import InferenceBackend, InferenceError
from services.common.model_repository import ModelRepository, ModelSpec

TASK = "face_detection"


class FaceModelError(InferenceError):
    """The repository model cannot serve as an SCRFD face detector (wrong task, wrong outputs)."""


@dataclass(frozen=True)
class ScrfdParams:
    input_size: tuple[int, int] | None  # (width, height); None = dynamic, sized from max_side
    score_threshold: float = 0.5
    nms_threshold: float = 0.4
    mean: float = 127.5
    std: float = 128.0
    strides: tuple[int, ...] = (8, 16, 32)
    num_anchors: int = 2

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ScrfdParams:
        raw: dict[str, Any] = spec.meta.params
        size = raw.get("input_size")
        input_size: tuple[int, int] | None
        if isinstance(size, int):
            input_size = (size, size)
        elif isinstance(size, list | tuple) and len(size) == 2:
            input_size = (int(size[0]), int(size[1]))
        else:
            input_size = _config_input_size(spec)
        return cls(
            input_size=input_size,
            score_threshold=float(raw.get("score_threshold", 0.5)),
            nms_threshold=float(raw.get("nms_threshold", 0.4)),
            mean=float(raw.get("mean", 127.5)),
            std=float(raw.get("std", 128.0)),
            strides=tuple(int(s) for s in raw.get("strides", (8, 16, 32))),
            num_anchors=int(raw.get("num_anchors", 2)),
        )


def _config_input_size(spec: ModelSpec) -> tuple[int, int] | None:
    if not spec.config.input:
        raise FaceModelError(f"model {spec.name!r} declares no input in its config.pbtxt")
    dims = list(spec.config.input[0].dims)
    if len(dims) >= 2 and dims[-1] > 0 and dims[-2] > 0:
        return int(dims[-1]), int(dims[-2])
    return None


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)


def anchor_centers(height: int, width: int, stride: int, num_anchors: int) -> np.ndarray:
    """(H*W*A, 2) x, y of every anchor, rows ordered (y, x, anchor) as SCRFD's heads emit them."""
    ys, xs = np.mgrid[:height, :width]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centers, num_anchors, axis=0)


def decode_scrfd(
    outputs: dict[str, np.ndarray],
    input_width: int,
    input_height: int,
    params: ScrfdParams,
    valid: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (K, 4), scores (K,), landmarks (K, 5, 2)) in model-input pixels, after NMS. Boxes are
    clipped to `valid` (width, height: the image part of a letterboxed input) before NMS."""
    expected_rows = {
        (input_height // s) * (input_width // s) * params.num_anchors: s for s in params.strides
    }
    heads: dict[tuple[int, int], np.ndarray] = {}
    for name, value in outputs.items():
        array = np.asarray(value, np.float32)
        if array.ndim == 3 and array.shape[0] == 1:  # batched exports: (1, N, C)
            array = array[0]
        if array.ndim != 2 or array.shape[1] not in (1, 4, 10) or array.shape[0] not in expected_rows:
            raise FaceModelError(
                f"output {name!r} of shape {list(np.shape(value))} is not an SCRFD head for input "
                f"{input_width}x{input_height} (strides {list(params.strides)}, {params.num_anchors} anchors)"
            )
        heads[(expected_rows[array.shape[0]], array.shape[1])] = array
    all_boxes, all_scores, all_kps = [], [], []
    for stride in params.strides:
        scores = heads.get((stride, 1))
        distances = heads.get((stride, 4))
        if scores is None or distances is None:
            raise FaceModelError(f"the model has no score/box outputs for stride {stride}")
        centers = anchor_centers(input_height // stride, input_width // stride, stride, params.num_anchors)
        # Negative distances (an untrained or broken model) would make inside-out boxes.
        keep = np.flatnonzero((scores[:, 0] >= params.score_threshold) & (distances.min(axis=1) >= 0))
        if keep.size == 0:
            continue
        d = distances[keep] * stride
        c = centers[keep]
        all_boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))
        all_scores.append(scores[keep, 0])
        kps = heads.get((stride, 10))
        if kps is not None:
            offsets = kps[keep].reshape(-1, 5, 2) * stride
            all_kps.append(c[:, None, :] + offsets)
        else:
            all_kps.append(np.repeat(c[:, None, :], 5, axis=1))
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
    boxes, scores, kps = np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_kps)
    if valid is not None:
        boxes = np.clip(boxes, 0, [valid[0], valid[1], valid[0], valid[1]])
        inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, kps = boxes[inside], scores[inside], kps[inside]
    keep_idx = nms(boxes, scores, params.nms_threshold)
    return boxes[keep_idx], scores[keep_idx], kps[keep_idx]


class ScrfdFaceDetector:
    """FaceDetector running an SCRFD export from the repository on any InferenceBackend."""

    def __init__(self, backend: InferenceBackend, spec: ModelSpec) -> None:
        if spec.task != TASK:
            raise FaceModelError(f"model {spec.name!r} has task {spec.task!r}, not {TASK!r}")
        self.backend = backend
        self.spec = spec
        self.name = spec.name
        self.params = ScrfdParams.from_spec(spec)
        self.input_name = spec.config.input[0].name

    @classmethod
    def from_repository(cls, name: str, backend: InferenceBackend, repository: ModelRepository) -> ScrfdFaceDetector:
        return cls(backend, repository.get_installed(name))

    def _input_size(self, image_shape: tuple[int, ...], max_side: int | None) -> tuple[int, int]:
        if self.params.input_size is not None:
            return self.params.input_size
        # A dynamic-shape export: size the input from max_side, a multiple of the largest stride.
        height, width = image_shape[:2]
        side = max_side or 640
        scale = min(1.0, side / max(height, width))
        step = max(self.params.strides)
        return _round_up(round(width * scale), step), _round_up(round(height * scale), step)

    def preprocess(self, image_rgb: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float, tuple[int, int]]:
        """The letterboxed input tensor, the scale from image to input pixels, and the input size."""
        height, width = image_rgb.shape[:2]
        in_w, in_h = self._input_size(image_rgb.shape, max_side)
        # Keep the aspect ratio and pad right/bottom, as insightface does.
        scale = min(in_w / width, in_h / height)
        new_w, new_h = max(1, int(width * scale)), max(1, int(height * scale))
        resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        canvas[:new_h, :new_w] = resized
        tensor = (canvas.astype(np.float32) - self.params.mean) / self.params.std
        return np.ascontiguousarray(tensor.transpose(2, 0, 1)[None]), new_h / height, (in_w, in_h)

    async def detect(
        self,
        image_rgb: np.ndarray,
        max_side: int | None = None,
        *,
        sizes: tuple[float, float] | None = None,
        expected: bool = False,
    ) -> list[FaceBox]:
        # One network pass finds every size at the same cost: `sizes` saves nothing here.
        image = rgb_image(image_rgb)
        tensor, scale, (in_w, in_h) = self.preprocess(image, max_side)
        outputs = await self.backend.infer(self.name, {self.input_name: tensor})
        height, width = image.shape[:2]
        params = self.params
        if expected:
            params = replace(params, score_threshold=params.score_threshold * EXPECTED_SCORE_FACTOR)
        boxes, scores, kps = decode_scrfd(outputs, in_w, in_h, params, (width * scale, height * scale))
        boxes = boxes / scale
        kps = kps / scale
        faces = []
        for box, score, points in zip(boxes, scores, kps, strict=True):
            x0, y0 = float(np.clip(box[0], 0, width)), float(np.clip(box[1], 0, height))
            x1, y1 = float(np.clip(box[2], 0, width)), float(np.clip(box[3], 0, height))
            if x1 <= x0 or y1 <= y0:
                continue
            faces.append(
                FaceBox(x0, y0, x1, y1, float(score), tuple((float(x), float(y)) for x, y in points))
            )
        return faces
