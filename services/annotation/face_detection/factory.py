"""Picking a face detector: an installed DNN detector of the repository (BlazeFace/MediaPipe, SCRFD)
by default, the Haar cascades that ship with OpenCV when none is installed or when asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.annotation.face_detection.base import FaceDetector
from services.common.inference.base import InferenceBackend
from services.common.model_repository import ModelRepository, ModelSpec
from services.common.settings import Settings, get_settings

HAAR_NAMES = ("haar", "haar-frontalface", "haar_face")
TASK = "face_detection"


def face_detector_for(spec: ModelSpec, backend: InferenceBackend) -> FaceDetector:
    """The detector for a repository model of task face_detection, by its params' `format`."""
    from services.annotation.face_detection.blazeface import FORMAT as BLAZEFACE
    from services.annotation.face_detection.blazeface import BlazeFaceDetector
    from services.annotation.face_detection.dnn import ScrfdFaceDetector

    if spec.meta.params.get("format") == BLAZEFACE:
        return BlazeFaceDetector(backend, spec)
    return ScrfdFaceDetector(backend, spec)


def default_dnn_detector(repository: ModelRepository) -> ModelSpec | None:
    """The installed DNN face detector used when none is named: `default: true` first, then by name."""
    specs = [
        s for s in repository.installed(TASK)
        if s.meta.params.get("format") != "yolov8"  # YOLO face models run as adapters in the catalog
    ]
    specs.sort(key=lambda s: (not s.meta.params.get("default", False), s.name))
    return specs[0] if specs else None


@asynccontextmanager
async def open_face_detector(name: str | None = None, settings: Settings | None = None) -> AsyncIterator[FaceDetector]:
    """`haar`, the name of an installed repository model with task `face_detection`, or (no name)
    the installed DNN detector, Haar when there is none; run on the configured inference backend."""
    settings = settings or get_settings()
    repository = ModelRepository(settings.model_repository)
    spec = None
    if name and name not in HAAR_NAMES:
        spec = repository.get_installed(name)  # ModelNotFoundError names the install command
    elif not name:
        spec = default_dnn_detector(repository)
    if spec is None:
        from services.annotation.face_detection.haar import HaarFaceDetector

        yield HaarFaceDetector()
        return
    from services.common.inference import create_backend

    backend = create_backend(settings, repository)
    try:
        yield face_detector_for(spec, backend)
    finally:
        await backend.close()
