"""Turning one streamed annotation message into what the DAM stores: the model's JSON result, its task,
its vectors, or a per-model failure. Pure functions over the protobuf messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from protos import media_annotation_pb2 as pb
from services.annotation.tasks import TASK_OF_FIELD
from services.dam.people.faces import DetectedFace, faces_of

# oneof field -> the annotation task stored in the annotations table and the `annotation type` facet.
TASKS: dict[str, str] = TASK_OF_FIELD


@dataclass
class Vector:
    kind: str  # 'image' | 'region'
    model: str
    values: list[float]
    box: list[float] | None = None
    label: str | None = None


@dataclass
class ModelResult:
    model: str
    task: str
    ok: bool
    data: dict[str, Any] | None = None
    error: str | None = None
    vectors: list[Vector] = field(default_factory=list)
    faces: list[DetectedFace] = field(default_factory=list)  # face_recognition: every face found


def _embedding_vector(kind: str, embedding: pb.Embedding, fallback_model: str, **extra: Any) -> Vector | None:
    values = list(embedding.values)
    if not values:
        return None
    return Vector(kind=kind, model=embedding.model or fallback_model, values=values, **extra)


def _box(box: pb.BoundingBox) -> list[float]:
    return [box.x_min, box.y_min, box.x_max, box.y_max]


def _strip_bulk(data: Any) -> Any:
    """Vectors live in asset_vectors and pictures are recomputable: keep the JSON small."""
    if isinstance(data, dict):
        return {
            k: ({"dimension": v.get("dimension"), "model": v.get("model")} if k == "embedding" and isinstance(v, dict)
                else ("<omitted>" if k in ("png", "video_data") else _strip_bulk(v)))
            for k, v in data.items()
            if k not in ("values",)
        }
    if isinstance(data, list):
        return [_strip_bulk(v) for v in data]
    return data


def parse_stream_message(message: Message) -> ModelResult | None:
    """One ImageAnnotationStreamResponse / VideoAnnotationStreamResponse -> ModelResult (None if empty)."""
    which = message.WhichOneof("response")
    if which is None:
        return None
    sub = getattr(message, which)
    if which == "model_error":
        return ModelResult(model=sub.model or "unknown", task=sub.task or "unknown", ok=False,
                           error=f"status {sub.status}: {sub.error_msg}")
    task = TASKS.get(which, which)
    vectors: list[Vector] = []
    if task == "cross_modal_embedding":
        vec = _embedding_vector("image", sub.embedding, sub.model)
        vectors += [vec] if vec else []
    elif task == "region_features":
        if sub.HasField("whole_image"):
            vec = _embedding_vector("image", sub.whole_image, sub.model)
            vectors += [vec] if vec else []
        for region in sub.regions:
            vec = _embedding_vector("region", region.embedding, sub.model, box=_box(region.box),
                                    label=region.label or None)
            vectors += [vec] if vec else []
    data = _strip_bulk(MessageToDict(sub, preserving_proto_field_name=True))
    faces = faces_of(sub) if task == "face_recognition" else []
    return ModelResult(model=sub.model or which, task=task, ok=True, data=data, vectors=vectors, faces=faces)


def doc_fields(annotations: list[tuple[str, str, dict[str, Any] | None]], object_min_score: float) -> dict[str, Any]:
    """Search-document fields derived from an asset's stored (task, state, data) annotations."""
    captions: list[str] = []
    ocr: list[str] = []
    objects: set[str] = set()
    faces = 0
    flags: dict[str, bool | None] = {"nsfw": None, "disturbing": None, "meme": None}
    types: set[str] = set()
    for task, state, data in annotations:
        if state != "done" or data is None:
            continue
        types.add(task)
        if task == "captioning":
            captions += [data.get("caption", ""), *data.get("alternatives", [])]
        elif task == "ocr":
            ocr.append(data.get("full_text") or " ".join(line.get("text", "") for line in data.get("lines", [])))
        elif task == "object_detection":
            detections = list(data.get("detections", []))
            for frame in data.get("frames", []):
                detections += frame.get("detections", [])
            objects |= {d["label"] for d in detections if d.get("label") and d.get("score", 0) >= object_min_score}
        elif task == "face_recognition":
            counts = [len(data.get("faces", []))] + [len(f.get("faces", [])) for f in data.get("frames", [])]
            faces = max(faces, *counts)
        elif task in ("nsfw", "disturbing", "meme"):
            key = {"nsfw": "is_nsfw", "disturbing": "is_disturbing", "meme": "is_meme"}[task]
            flags[task] = bool(flags[task]) or bool(data.get(key, False))
        elif task == "tagging":  # scene / object tags: searchable and in the objects facet
            tags = [t["label"] for t in data.get("tags", []) if t.get("label")]
            objects |= set(tags)
            captions += tags
        elif task == "action_recognition":
            captions += [a["label"] for a in data.get("actions", [])[:3] if a.get("label")]
    return {
        "captions": "\n".join(c for c in captions if c),
        "ocr_text": "\n".join(t for t in ocr if t),
        "objects": sorted(objects),
        "faces": faces,
        **flags,
        "annotation_types": sorted(types),
    }
