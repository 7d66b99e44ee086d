"""YOLOv8-style detectors: object detection (COCO labels from the sidecar), the NudeNet NSFW
detector and DNN face detectors share the output layout [4 + classes, boxes] with boxes as
cx, cy, w, h in input pixels."""

from __future__ import annotations

import numpy as np

from services.annotation.face_detection.base import EXPECTED_SCORE_FACTOR, FaceBox
from services.annotation.face_detection.nms import nms
from services.annotation.models.base import AdapterError, TaskModel
from services.annotation.models.preprocess import normalise_chw
from services.annotation.models.types import Detection, Label, Scored
from services.common.image_resize import ResizeError, ResizeSpec, resize_for_model


def decode_yolov8(
    output: np.ndarray,
    conf_threshold: float,
    iou_threshold: float,
    max_detections: int = 300,
    *,
    class_aware: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[4 + C, N] -> (boxes xyxy in input pixels, scores, class ids) after NMS: class-aware (boxes of
    different classes never suppress each other) unless `class_aware` is False."""
    if output.ndim != 2 or output.shape[0] < 5:
        raise AdapterError(f"expected a YOLOv8 output [4 + classes, boxes], got shape {list(output.shape)}")
    rows = output.T.astype(np.float32)
    class_scores = rows[:, 4:]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), class_ids]
    keep = scores >= conf_threshold
    rows, scores, class_ids = rows[keep], scores[keep], class_ids[keep]
    if not len(rows):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    order = nms(xyxy, scores, iou_threshold, classes=class_ids if class_aware else None, max_keep=max_detections)
    return xyxy[order], scores[order], class_ids[order]


class YoloDetector(TaskModel):
    """Letterbox -> infer -> decode -> normalised boxes on the original image."""

    default_conf = 0.25

    @property
    def input_size(self) -> int:
        return int(self.param("input_size", 640))

    @property
    def conf_threshold(self) -> float:
        return float(self.param("conf_threshold", self.param("score_threshold", self.default_conf)))

    async def detect(self, rgb: np.ndarray, conf_threshold: float | None = None) -> list[Detection]:
        # params.resize: letterbox (YOLO's default) or stretch (torchvision's detectors).
        try:
            resize = ResizeSpec.from_params(self.params, self.input_size, default_mode="letterbox")
        except ResizeError as exc:
            raise AdapterError(f"model {self.name!r}: {exc}") from exc
        image, lb = resize_for_model(rgb, resize)
        tensor = normalise_chw(image, None, None)
        out = await self._infer_one({self.input_names[0]: tensor})
        raw = out[self.output_names[0]] if self.output_names else next(iter(out.values()))
        if conf_threshold is None:
            conf_threshold = self.conf_threshold
        iou = float(self.param("iou_threshold", self.param("nms_iou", 0.45)))
        agnostic = bool(self.param("class_agnostic_nms", False))
        boxes, scores, class_ids = decode_yolov8(raw, float(conf_threshold), iou, class_aware=not agnostic)
        normalised = lb.to_image(boxes)
        return [
            Detection(self.label(int(c)), float(s), (float(b[0]), float(b[1]), float(b[2]), float(b[3])), int(c))
            for b, s, c in zip(normalised, scores, class_ids, strict=True)
            if b[2] > b[0] and b[3] > b[1]
        ]


class NsfwDetector(YoloDetector):
    """NudeNet-style detector: the image-level NSFW score is the best score among regions whose
    label the sidecar lists in `nsfw_labels`; those regions are returned as the evidence."""

    default_conf = 0.2

    async def score(self, rgb: np.ndarray) -> Scored:
        nsfw_labels = set(self.param("nsfw_labels", []))
        if not nsfw_labels:
            raise AdapterError(f"model {self.name!r}: its maam.json params must list `nsfw_labels`")
        detections = await self.detect(rgb)
        regions = [d for d in detections if d.label in nsfw_labels]
        best: dict[str, float] = {}
        for d in regions:
            best[d.label] = max(best.get(d.label, 0.0), d.score)
        labels = [
            Label(name, score, self.labels.index(name) if name in self.labels else -1)
            for name, score in sorted(best.items(), key=lambda kv: -kv[1])
        ]
        score = max((d.score for d in regions), default=0.0)
        return Scored(self.name, score, float(self.param("threshold", 0.5)), labels, regions)


class DnnFaceDetector(YoloDetector):
    """A YOLO-style face detector from the repository (e.g. a YOLOv8-face export), exposed through
    the FaceDetector protocol so the face pipeline and face blurring can use it."""

    default_conf = 0.4

    async def detect_faces(
        self, image_rgb: np.ndarray, max_side: int | None = None, *, expected: bool = False
    ) -> list[FaceBox]:
        height, width = image_rgb.shape[:2]
        threshold = EXPECTED_SCORE_FACTOR * self.conf_threshold if expected else None
        return [
            FaceBox(d.box[0] * width, d.box[1] * height, d.box[2] * width, d.box[3] * height, d.score)
            for d in await self.detect(image_rgb, threshold)
        ]


class FaceDetectorView:
    """Adapts DnnFaceDetector to the FaceDetector protocol (`name`, `detect`)."""

    def __init__(self, model: DnnFaceDetector) -> None:
        self.model = model
        self.name = model.name

    async def detect(
        self,
        image_rgb: np.ndarray,
        max_side: int | None = None,
        *,
        sizes: tuple[float, float] | None = None,
        expected: bool = False,
    ) -> list[FaceBox]:
        # One pass covers every size; an expected face may score lower.
        return await self.model.detect_faces(image_rgb, max_side, expected=expected)
