"""The faces of one face-recognition stream message (image or video), as the DAM stores them. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from protos import media_annotation_pb2 as pb

# A face this many pixels on its shorter side (or more) counts fully in its quality; smaller ones less.
FULL_QUALITY_PX = 80.0


@dataclass
class DetectedFace:
    box: list[float]  # normalised x_min, y_min, x_max, y_max
    score: float
    size_px: float  # shorter side of the box in pixels (0: image size unknown)
    embedding: list[float] | None = None
    embedding_model: str = ""
    frame_index: int | None = None
    timestamp: float | None = None
    track: int | None = None  # faces of one video linked across keyframes share it
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def quality(self) -> float:
        """Detector score times how large the face is (small faces describe a person poorly)."""
        size = min(1.0, self.size_px / FULL_QUALITY_PX) if self.size_px > 0 else 1.0
        return float(self.score) * size


def _face(face: pb.Face, width: int, height: int, default_model: str, **extra: Any) -> DetectedFace:
    box = face.box
    values = list(face.embedding.values)
    side = min((box.x_max - box.x_min) * width, (box.y_max - box.y_min) * height) if width and height else 0.0
    attributes = (MessageToDict(face.attributes, preserving_proto_field_name=True)
                  if face.HasField("attributes") else {})
    return DetectedFace(
        box=[float(box.x_min), float(box.y_min), float(box.x_max), float(box.y_max)], score=float(face.score),
        size_px=float(side), embedding=[float(v) for v in values] or None,
        embedding_model=(face.embedding.model or default_model) if values else "",
        attributes=attributes, **extra)


def faces_of(message: Message) -> list[DetectedFace]:
    """Faces of an ImageFaceRecognitionResponse or VideoFaceRecognitionResponse (others: none)."""
    if isinstance(message, pb.ImageFaceRecognitionResponse):
        size = message.image_size
        return [_face(f, size.width, size.height, message.embedding_model) for f in message.faces]
    if isinstance(message, pb.VideoFaceRecognitionResponse):
        video = message.video
        faces = [_face(f, video.width, video.height, message.embedding_model, frame_index=int(frame.frame_index),
                       timestamp=float(frame.timestamp))
                 for frame in message.frames for f in frame.faces]
        link_tracks(faces)
        return faces
    return []


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _unit(values: list[float] | None) -> np.ndarray | None:
    if not values:
        return None
    v = np.asarray(values, np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else None


def link_tracks(faces: list[DetectedFace], similarity: float = 0.6, min_iou: float = 0.3) -> None:
    """Links the faces of consecutive keyframes into tracks (in place): a face continues the track whose
    latest face looks most alike (cosine >= `similarity`; without embeddings, boxes overlapping by
    `min_iou`). Keyframes may be far apart (shots), so appearance counts before position."""
    tracks: list[DetectedFace] = []  # the latest face of each track
    by_frame: dict[int, list[DetectedFace]] = {}
    for face in faces:
        by_frame.setdefault(face.frame_index or 0, []).append(face)
    for frame in sorted(by_frame):
        taken: set[int] = set()
        for face in by_frame[frame]:
            unit = _unit(face.embedding)
            best, best_score = None, 0.0
            for index, last in enumerate(tracks):
                if index in taken:
                    continue
                other = _unit(last.embedding)
                if unit is not None and other is not None and unit.shape == other.shape:
                    score = float(unit @ other)
                    ok = score >= similarity
                else:
                    score = _iou(face.box, last.box)
                    ok = score >= min_iou
                if ok and score > best_score:
                    best, best_score = index, score
            if best is None:
                tracks.append(face)
                best = len(tracks) - 1
            else:
                tracks[best] = face
            taken.add(best)
            face.track = best
