"""OCR with PP-OCR (detection -> optional direction classifier -> CTC recognition), the three
sessions run through our backend; pre/post-processing reuses rapidocr_onnxruntime's utilities
(DB post-processing, CTC decoding) so results match the reference pipeline."""

from __future__ import annotations

import math

import cv2
import numpy as np

from services.annotation.models.base import AdapterError, TaskModel
from services.annotation.models.types import OcrLine


class TextDetector(TaskModel):

    async def boxes(self, rgb: np.ndarray) -> list[np.ndarray]:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess, DetPreProcess

        limit = int(self.param("limit_side_len", 736))
        limit_type = str(self.param("limit_type", "min"))
        pre = DetPreProcess(limit, limit_type, self.params.get("mean"), self.params.get("std"))
        tensor = pre(rgb[:, :, ::-1])  # PP-OCR was trained on BGR input
        if tensor is None:
            return []
        out = await self._infer({self.input_names[0]: tensor.astype(np.float32)})
        post = DBPostProcess(
            thresh=float(self.param("thresh", 0.3)),
            box_thresh=float(self.param("box_thresh", 0.5)),
            max_candidates=1000,
            unclip_ratio=float(self.param("unclip_ratio", 1.6)),
            use_dilation=True,
            score_mode="fast",
        )
        boxes, _ = post(out[self.output_names[0]], rgb.shape[:2])
        height, width = rgb.shape[:2]
        kept = []
        for box in boxes:
            box = _order_clockwise(np.asarray(box, np.float32))
            box[:, 0] = np.clip(box[:, 0], 0, width - 1)
            box[:, 1] = np.clip(box[:, 1], 0, height - 1)
            if np.linalg.norm(box[0] - box[1]) > 3 and np.linalg.norm(box[0] - box[3]) > 3:
                kept.append(box)
        return _reading_order(kept)


class TextDirection(TaskModel):

    async def upright(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Turns crops the classifier finds upside down (label "180") the right way up."""
        if not crops:
            return crops
        _, height, width = (int(v) for v in self.param("cls_image_shape", self.param("image_shape", [3, 48, 192])))
        batch = np.stack([_resize_norm(c, height, width, width / height) for c in crops])
        probs = (await self._infer({self.input_names[0]: batch}))[self.output_names[0]]
        labels = list(self.labels or ("0", "180"))
        out = []
        for crop, p in zip(crops, probs, strict=True):
            threshold = float(self.param("cls_thresh", self.param("thresh", 0.9)))
            flip = "180" in labels[int(np.argmax(p))] and float(np.max(p)) > threshold
            out.append(cv2.rotate(crop, cv2.ROTATE_180) if flip else crop)
        return out


class TextRecognizer(TaskModel):

    async def read(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode

        if not crops:
            return []
        if not self.labels:
            raise AdapterError(f"model {self.name!r}: its maam.json needs the character dictionary as labels")
        decode = CTCLabelDecode(character=list(self.labels))
        if self.labels[0] == "blank":
            # The sidecar holds the model's full class list (CTC blank first, space last) already.
            decode.character = list(self.labels)
            decode.dict = {char: i for i, char in enumerate(decode.character)}
        _, height, width = (int(v) for v in self.param("rec_img_shape", self.param("image_shape", [3, 48, 320])))
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        order = np.argsort([c.shape[1] / c.shape[0] for c in crops])
        batch_size = 6
        for start in range(0, len(crops), batch_size):
            chunk = order[start : start + batch_size]
            ratio = max([width / height] + [crops[i].shape[1] / crops[i].shape[0] for i in chunk])
            batch = np.stack([_resize_norm(crops[i], height, int(height * ratio), ratio) for i in chunk])
            preds = (await self._infer({self.input_names[0]: batch}))[self.output_names[0]]
            for i, (text, score) in zip(chunk, decode(preds), strict=True):
                results[int(i)] = (text, float(score))
        return results


class OcrPipeline:
    """Detection, then direction (when a classifier is installed), then recognition."""

    def __init__(self, det: TextDetector, rec: TextRecognizer, cls: TextDirection | None = None) -> None:
        self.det, self.rec, self.cls = det, rec, cls
        self.name = det.name

    @property
    def models(self) -> list[str]:
        return [m.name for m in (self.det, self.cls, self.rec) if m is not None]

    async def read(self, rgb: np.ndarray, min_score: float = 0.5) -> list[OcrLine]:
        boxes = await self.det.boxes(rgb)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        crops = [_rotate_crop(bgr, box) for box in boxes]
        if self.cls is not None:
            crops = await self.cls.upright(crops)
        texts = await self.rec.read(crops)
        height, width = rgb.shape[:2]
        lines = []
        for box, (text, score) in zip(boxes, texts, strict=True):
            if not text.strip() or score < min_score:
                continue
            poly = tuple((float(x) / width, float(y) / height) for x, y in box)
            xs, ys = [p[0] for p in poly], [p[1] for p in poly]
            lines.append(OcrLine(text, score, poly, (min(xs), min(ys), max(xs), max(ys))))
        return lines


def _order_clockwise(pts: np.ndarray) -> np.ndarray:
    xs = pts[np.argsort(pts[:, 0])]
    left, right = xs[:2][np.argsort(xs[:2, 1])], xs[2:][np.argsort(xs[2:, 1])]
    return np.array([left[0], right[0], right[1], left[1]], np.float32)


def _reading_order(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """Top to bottom, then left to right for boxes on the same line (within 10 px)."""
    ordered = sorted(boxes, key=lambda b: (float(b[0][1]), float(b[0][0])))
    for i in range(len(ordered) - 1):
        for j in range(i, -1, -1):
            if abs(ordered[j + 1][0][1] - ordered[j][0][1]) < 10 and ordered[j + 1][0][0] < ordered[j][0][0]:
                ordered[j], ordered[j + 1] = ordered[j + 1], ordered[j]
            else:
                break
    return ordered


def _rotate_crop(bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
    width = int(max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[2] - points[3])))
    height = int(max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2])))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    matrix = cv2.getPerspectiveTransform(points.astype(np.float32), target)
    crop = cv2.warpPerspective(bgr, matrix, (max(1, width), max(1, height)),
                               borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if crop.shape[0] / max(1, crop.shape[1]) >= 1.5:
        crop = np.rot90(crop)  # vertical text: read it as a horizontal line
    return np.ascontiguousarray(crop)


def _resize_norm(bgr: np.ndarray, height: int, width: int, max_ratio: float) -> np.ndarray:
    """PP-OCR's recogniser input: height fixed, width by aspect ratio, padded right, in [-1, 1]."""
    ratio = bgr.shape[1] / float(bgr.shape[0])
    resized_w = min(width, math.ceil(height * ratio))
    resized = cv2.resize(bgr, (max(1, resized_w), height)).astype(np.float32).transpose(2, 0, 1) / 255.0
    out = np.zeros((3, height, width), np.float32)
    out[:, :, : resized.shape[2]] = (resized - 0.5) / 0.5
    return out
