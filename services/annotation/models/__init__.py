"""One adapter per task, dispatched by the task named in each model's maam.json."""

from __future__ import annotations

from services.annotation.models.base import AdapterError, TaskModel
from services.annotation.models.captioning import Captioner
from services.annotation.models.classification import ClipClassifier, ImageClassifier
from services.annotation.models.detection import DnnFaceDetector, NsfwDetector, YoloDetector
from services.annotation.models.embedding import ImageEmbedder, TextEmbedder
from services.annotation.models.memefier import MemeFierClassifier
from services.annotation.models.mvsd import MvsdSaliency
from services.annotation.models.ocr import TextDetector, TextDirection, TextRecognizer
from services.annotation.models.saliency import SaliencyModel
from services.common.inference import InferenceBackend
from services.common.model_repository import ModelSpec

_ADAPTER_CLASSES: tuple[type[TaskModel], ...] = (
    YoloDetector,
    NsfwDetector,
    DnnFaceDetector,
    ImageClassifier,
    ClipClassifier,
    ImageEmbedder,
    TextEmbedder,
    Captioner,
    SaliencyModel,
    TextDetector,
    TextDirection,
    TextRecognizer,
)

ADAPTERS: dict[str, type[TaskModel]] = {task: cls for cls in _ADAPTER_CLASSES for task in cls.tasks}

# Adapters chosen by the sidecar's `params.format` within a task (the source document's own models).
FORMAT_ADAPTERS: dict[tuple[str, str], type[TaskModel]] = {
    ("meme_classification", "memefier"): MemeFierClassifier,
    ("hateful_meme_classification", "memefier"): MemeFierClassifier,
    ("saliency", "mvsd"): MvsdSaliency,
}

# Face detectors that run outside the inference backend (OpenCV's Haar cascades).
HAAR_RUNTIME = "opencv-haar"


def create_adapter(spec: ModelSpec, backend: InferenceBackend) -> TaskModel | None:
    """The adapter for a repository model, or None when no adapter serves its task (SCRFD face
    detectors are built by the catalog with services.annotation.face_detection.dnn)."""
    if spec.task == "face_detection" and spec.meta.params.get("format") != "yolov8":
        return None
    cls = FORMAT_ADAPTERS.get((spec.task, str(spec.meta.params.get("format", "")))) or ADAPTERS.get(spec.task)
    return cls(spec, backend) if cls is not None else None


__all__ = ["ADAPTERS", "HAAR_RUNTIME", "AdapterError", "TaskModel", "create_adapter"]
