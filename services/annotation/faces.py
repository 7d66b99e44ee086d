"""Faces on an image: a FaceDetector (Haar by default, a DNN detector when installed), an optional
face embedder and the nearest identity in a configurable gallery."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.annotation.face_detection.base import FaceBox, FaceDetector
from services.annotation.models.embedding import ImageEmbedder
from services.annotation.models.preprocess import crop
from services.annotation.models.types import Box, Vector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundFace:
    box: Box
    score: float
    landmarks: tuple[tuple[float, float], ...]
    embedding: Vector | None = None
    identity: str = ""
    identity_score: float = 0.0


class Gallery:
    """Known identities: names and unit vectors of one face-embedding model."""

    def __init__(self, names: list[str], vectors: np.ndarray) -> None:
        self.names = names
        self.vectors = vectors.astype(np.float32)

    @classmethod
    def load(cls, path: Path) -> Gallery:
        with np.load(path, allow_pickle=False) as data:
            return cls([str(n) for n in data["names"]], np.asarray(data["vectors"], np.float32))

    def nearest(self, vector: np.ndarray, threshold: float) -> tuple[str, float]:
        if not self.names or self.vectors.shape[1] != vector.shape[0]:
            return "", 0.0
        sims = self.vectors @ vector
        best = int(np.argmax(sims))
        return (self.names[best], float(sims[best])) if sims[best] >= threshold else ("", float(sims[best]))


def default_haar_detector() -> FaceDetector | None:
    """The Haar detector that ships with opencv-python-headless 4.x (from the face-blur package)."""
    try:
        from services.annotation.face_blur import default_face_detector
    except ImportError:
        log.warning("no Haar face detector available (services.annotation.face_blur not installed)")
        return None
    return default_face_detector()


class FacePipeline:
    def __init__(
        self,
        detector: FaceDetector,
        embedder: ImageEmbedder | None = None,
        gallery: Gallery | None = None,
        identity_threshold: float = 0.5,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.gallery = gallery
        self.identity_threshold = identity_threshold

    @property
    def name(self) -> str:
        return self.detector.name

    async def faces(self, rgb: np.ndarray) -> list[FoundFace]:
        height, width = rgb.shape[:2]
        boxes: list[FaceBox] = await self.detector.detect(rgb)
        found = []
        norm = [
            (
                (max(0.0, b.x_min / width), max(0.0, b.y_min / height),
                 min(1.0, b.x_max / width), min(1.0, b.y_max / height)),
                b,
            )
            for b in boxes
        ]
        vectors: list[Vector | None] = [None] * len(norm)
        if self.embedder is not None and norm:
            vectors = list(await self.embedder.embed([crop(rgb, box) for box, _ in norm]))
        for (box, raw), vector in zip(norm, vectors, strict=True):
            identity, similarity = "", 0.0
            if vector is not None and self.gallery is not None:
                identity, similarity = self.gallery.nearest(vector.values, self.identity_threshold)
            landmarks = tuple((x / width, y / height) for x, y in raw.landmarks)
            found.append(FoundFace(box, raw.score, landmarks, vector, identity, similarity))
        return found
