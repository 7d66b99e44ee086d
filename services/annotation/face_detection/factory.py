"""Picking a face detector by name: the shipped Haar cascades, or an SCRFD model of the repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.annotation.face_detection.base import FaceDetector
from services.common.settings import Settings, get_settings

HAAR_NAMES = ("haar", "haar-frontalface")


@asynccontextmanager
async def open_face_detector(name: str | None = None, settings: Settings | None = None) -> AsyncIterator[FaceDetector]:
    """`haar` (the default) or the name of an installed repository model with task
    `face_detection`, run on the configured inference backend (closed on exit)."""
    if not name or name in HAAR_NAMES:
        from services.annotation.face_detection.haar import HaarFaceDetector

        yield HaarFaceDetector()
        return
    from services.annotation.face_detection.dnn import ScrfdFaceDetector
    from services.common.inference import create_backend
    from services.common.model_repository import ModelRepository

    settings = settings or get_settings()
    repository = ModelRepository(settings.model_repository)
    spec = repository.get_installed(name)  # ModelNotFoundError names the install command
    backend = create_backend(settings, repository)
    try:
        yield ScrfdFaceDetector(backend, spec)
    finally:
        await backend.close()
