"""Faces on an image: a FaceDetector (Haar by default, a DNN detector when installed), an optional
face embedder and the nearest identity in a configurable gallery."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from services.annotation.face_detection.base import FaceBox, FaceDetector
from services.annotation.models.embedding import ImageEmbedder
from services.annotation.models.face_align import ALIGNMENT, align_arcface
from services.annotation.models.faceres import ExpressionClassifier, FaceAttributes, FaceresDescriptor
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
    attributes: FaceAttributes | None = None


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
    from services.annotation.face_detection.haar import HaarCascadeMissingError, HaarFaceDetector

    try:
        return HaarFaceDetector()
    except HaarCascadeMissingError as exc:
        log.warning("no Haar face detector: %s", exc)
        return None


class FacePipeline:
    def __init__(
        self,
        detector: FaceDetector,
        embedder: ImageEmbedder | None = None,
        gallery: Gallery | None = None,
        identity_threshold: float = 0.5,
        expression: ExpressionClassifier | None = None,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.gallery = gallery
        self.identity_threshold = identity_threshold
        self.expression = expression

    @property
    def name(self) -> str:
        return self.detector.name

    def _face_crop(self, rgb: np.ndarray, box: Box, face: FaceBox) -> np.ndarray:
        """What the embedder sees: the crop aligned on five landmarks when its sidecar asks for that
        and the detector gave them (SCRFD), else the box (Haar and MediaPipe give no five points)."""
        if self.embedder is not None and self.embedder.params.get("alignment") == ALIGNMENT \
                and len(face.landmarks) == 5:
            return align_arcface(rgb, face.landmarks, int(self.embedder.param("input_size", 112)))
        return crop(rgb, box)

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
        attributes: list[FaceAttributes | None] = [None] * len(norm)
        pixel_boxes = [(b.x_min, b.y_min, b.x_max, b.y_max) for b in boxes]
        if isinstance(self.embedder, FaceresDescriptor) and norm:
            described = await self.embedder.describe(rgb, pixel_boxes)
            vectors = [v for v, _ in described]
            attributes = [a for _, a in described]
        elif self.embedder is not None and norm:
            vectors = list(await self.embedder.embed([self._face_crop(rgb, box, raw) for box, raw in norm]))
        if self.expression is not None and norm:
            expressions = await self.expression.expressions(rgb, pixel_boxes)
            attributes = [
                replace(a or FaceAttributes(), expression=label, expression_score=score,
                        model="+".join(n for n in ((a.model if a else ""), self.expression.name) if n))
                for a, (label, score) in zip(attributes, expressions, strict=True)
            ]
        for (box, raw), vector, attrs in zip(norm, vectors, attributes, strict=True):
            identity, similarity = "", 0.0
            if vector is not None and self.gallery is not None:
                identity, similarity = self.gallery.nearest(vector.values, self.identity_threshold)
            landmarks = tuple((x / width, y / height) for x, y in raw.landmarks)
            found.append(FoundFace(box, raw.score, landmarks, vector, identity, similarity, attrs))
        return found
