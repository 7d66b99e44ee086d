"""Which adapter builds which repository model: one Format per (repository task, `params.format`).
The catalog (services/annotation/catalog.py) builds every installed model with the Format that
model_format picks; the rows of the task table (services/annotation/tasks.py) then run the models of
their repository tasks.

How to add a model format (e.g. NanoDet for object detection, BlazeFace for face detection): write
its adapter (`services/annotation/models/` or `face_detection/`, constructed from (spec, backend)),
add one `Format(repository task, params.format, build)` line to FORMATS. Models whose sidecar says
`params.format: <it>` are then built with it; the row that runs the repository task picks them up
(add the adapter's class to that row's `adapters` if it is a new type; its run function must accept
it). A format of a face detector returns a FaceDetector; the catalog wraps it in a FacePipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.annotation.face_detection.blazeface import FORMAT as BLAZEFACE
from services.annotation.face_detection.factory import face_detector_for
from services.annotation.face_detection.haar import HAAR_RUNTIME
from services.annotation.faces import default_haar_detector
from services.annotation.models.captioning import Captioner
from services.annotation.models.classification import ClipClassifier, ImageClassifier
from services.annotation.models.detection import DnnFaceDetector, FaceDetectorView, NsfwDetector, YoloDetector
from services.annotation.models.embedding import ImageEmbedder, TextEmbedder
from services.annotation.models.faceres import FACERES_FORMAT as FACERES
from services.annotation.models.faceres import ExpressionClassifier, FaceresDescriptor
from services.annotation.models.memefier import MemeFierClassifier
from services.annotation.models.mvsd import MvsdSaliency
from services.annotation.models.nanodet import FORMAT as NANODET
from services.annotation.models.nanodet import NanodetDetector
from services.annotation.models.ocr import TextDetector, TextDirection, TextRecognizer
from services.annotation.models.saliency import SaliencyModel, SpectralResidual
from services.annotation.models.video_clip import FORMAT as TORCHVISION_VIDEO
from services.annotation.models.video_clip import VideoClassifier
from services.annotation.models.zeroshot import build_zeroshot
from services.common.inference import InferenceBackend
from services.common.model_repository import TRITON_RUNTIME, ModelSpec


@dataclass(frozen=True)
class Format:
    """How one kind of repository model is built: `format` is the sidecar's `params.format` (or its
    built-in runtime, e.g. opencv-haar); None builds the task's models that name no other format. A
    `fallback` format runs in the fan-out only when no other model of its task is installed (it stays
    reachable by name)."""

    task: str
    format: str | None
    build: Callable[[ModelSpec, InferenceBackend], object | None]
    fallback: bool = False


def yolo_face(spec: ModelSpec, backend: InferenceBackend) -> FaceDetectorView:
    return FaceDetectorView(DnnFaceDetector(spec, backend))


def haar_face(spec: ModelSpec, backend: InferenceBackend) -> object | None:
    """OpenCV's Haar cascades run in process, reported under the repository entry's name."""
    detector = default_haar_detector()
    if detector is not None:
        detector.name = spec.name
    return detector


# Within a task, earlier formats come first among models that are not the sidecar's default.
FORMATS: tuple[Format, ...] = (
    Format("object_detection", NANODET, NanodetDetector),  # NanoDet's own head (packaged)
    Format("object_detection", None, YoloDetector),  # YOLOv8 head, params.format "yolov8"
    Format("nsfw_detection", None, NsfwDetector),  # the same decoder (NudeNet)
    Format("face_detection", "yolov8", yolo_face),
    # face_detector_for builds both by params.format (as `maam blur-faces` does).
    Format("face_detection", BLAZEFACE, face_detector_for),  # MediaPipe short-range / BlazeFace (packaged)
    Format("face_detection", None, face_detector_for),  # InsightFace SCRFD, params.format "scrfd"
    # Haar only where no DNN detector is installed: beside one it doubles every face and adds background.
    Format("face_detection", HAAR_RUNTIME, haar_face, fallback=True),
    # CLIP zero-shot heads over the installed CLIP (`maam models pull clip_zeroshot`).
    *(Format(task, "clip_zeroshot", build_zeroshot)
      for task in ("disturbing_classification", "meme_classification", "image_tagging")),
    *(Format(task, None, ImageClassifier) for task in (
        "nsfw_classification", "disturbing_classification", "meme_classification", "hateful_meme_classification",
        "action_recognition")),
    Format("video_action_recognition", TORCHVISION_VIDEO, VideoClassifier),  # Kinetics-400 (pulled)
    Format("video_action_recognition", None, ClipClassifier),
    Format("face_embedding", FACERES, FaceresDescriptor),  # descriptor + age + gender (packaged)
    Format("face_expression", None, ExpressionClassifier),  # a helper of the face pipeline, no row of its own
    *(Format(task, None, ImageEmbedder) for task in ("image_embedding", "region_embedding", "face_embedding")),
    Format("text_embedding", None, TextEmbedder),
    Format("image_captioning", None, Captioner),  # its caption_decoder part has no format of its own
    Format("saliency", None, SaliencyModel),
    # The source document's own models (services/models/research, `maam models train … --install`).
    Format("meme_classification", "memefier", MemeFierClassifier),
    Format("hateful_meme_classification", "memefier", MemeFierClassifier),
    Format("saliency", "mvsd", MvsdSaliency),
    Format("ocr_detection", None, TextDetector),
    Format("ocr_direction", None, TextDirection),
    Format("ocr_recognition", None, TextRecognizer),
)

# Model-free runners, under a repository task of their own (a row's fallback).
BUILTINS: dict[str, Callable[[], object]] = {"spectral_residual": SpectralResidual}


def model_format(spec: ModelSpec, formats: Sequence[Format] = FORMATS) -> Format | None:
    """The Format that builds this repository model, or None when no adapter serves its task."""
    params = spec.meta.params
    runtime = spec.meta.runtime if spec.meta.runtime != TRITON_RUNTIME else None
    name = params.get("format") or params.get("runtime") or runtime
    found = [f for f in formats if f.task == spec.task and f.format in (name, None)]
    return min(found, key=lambda f: f.format is None) if found else None
