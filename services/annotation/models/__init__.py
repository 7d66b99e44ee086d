"""One adapter per task, dispatched by the task named in each model's maam.json."""

from __future__ import annotations

from services.annotation.models.base import AdapterError, TaskModel
from services.annotation.models.captioning import Captioner
from services.annotation.models.classification import ClipClassifier, ImageClassifier
from services.annotation.models.detection import DnnFaceDetector, NsfwDetector, YoloDetector
from services.annotation.models.embedding import ImageEmbedder, TextEmbedder
from services.annotation.models.faceres import ExpressionClassifier, FaceresDescriptor
from services.annotation.models.nanodet import NanodetDetector
from services.annotation.models.nsfw import NsfwClassifier
from services.annotation.models.ocr import TextDetector, TextDirection, TextRecognizer
from services.annotation.models.saliency import SaliencyModel
from services.common.inference import InferenceBackend
from services.common.model_repository import ModelSpec

_ADAPTER_CLASSES: tuple[type[TaskModel], ...] = (
    YoloDetector,
    NsfwDetector,
    DnnFaceDetector,
    ImageClassifier,
    NsfwClassifier,
    ClipClassifier,
    ImageEmbedder,
    TextEmbedder,
    Captioner,
    SaliencyModel,
    TextDetector,
    TextDirection,
    TextRecognizer,
    ExpressionClassifier,
)
# Adapters for one output format of a task (maam.json params `format`), e.g. NanoDet's own head.
_FORMAT_CLASSES: tuple[type[TaskModel], ...] = (NanodetDetector, FaceresDescriptor)

ADAPTERS: dict[str, type[TaskModel]] = {task: cls for cls in _ADAPTER_CLASSES for task in cls.tasks}
FORMAT_ADAPTERS: dict[tuple[str, str], type[TaskModel]] = {
    (task, fmt): cls for cls in _FORMAT_CLASSES for task in cls.tasks for fmt in cls.formats
}

# Face detectors that run outside the inference backend (OpenCV's Haar cascades).
HAAR_RUNTIME = "opencv-haar"


def create_adapter(spec: ModelSpec, backend: InferenceBackend) -> TaskModel | None:
    """The adapter for a repository model, or None when no adapter serves its task (SCRFD and
    BlazeFace face detectors are built by services.annotation.face_detection.factory)."""
    fmt = spec.meta.params.get("format")
    if spec.task == "face_detection" and fmt != "yolov8":
        return None
    cls = FORMAT_ADAPTERS.get((spec.task, str(fmt))) or ADAPTERS.get(spec.task)
    return cls(spec, backend) if cls is not None else None


__all__ = ["ADAPTERS", "FORMAT_ADAPTERS", "HAAR_RUNTIME", "AdapterError", "TaskModel", "create_adapter"]
