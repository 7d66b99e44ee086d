"""Adapter results -> protobuf messages (boxes normalised, as the contract says)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from protos import media_annotation_pb2 as pb
from services.annotation.faces import FoundFace
from services.annotation.models.types import Box, Detection, Label, OcrLine, Saliency, Vector


def box_pb(box: Box) -> pb.BoundingBox:
    return pb.BoundingBox(x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3])


def detection_pb(d: Detection) -> pb.Detection:
    return pb.Detection(label=d.label, score=d.score, box=box_pb(d.box), class_id=d.class_id)


def label_pb(label: Label) -> pb.Label:
    return pb.Label(label=label.label, score=label.score, class_id=label.class_id)


def embedding_pb(vector: Vector) -> pb.Embedding:
    values = vector.values.astype(np.float32)
    return pb.Embedding(values=values.tolist(), dimension=len(values), model=vector.model, normalized=vector.normalized)


def size_pb(rgb: np.ndarray) -> pb.ImageSize:
    return pb.ImageSize(width=int(rgb.shape[1]), height=int(rgb.shape[0]))


def saliency_map_pb(saliency: Saliency) -> pb.SaliencyMap:
    grey = np.clip(saliency.map * 255.0 + 0.5, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    # Fast compression: the map is smooth, level 1 is a fraction of the default's time.
    Image.fromarray(grey, mode="L").save(buffer, format="PNG", compress_level=1)
    return pb.SaliencyMap(width=grey.shape[1], height=grey.shape[0], png=buffer.getvalue())


def face_pb(face: FoundFace) -> pb.Face:
    out = pb.Face(
        box=box_pb(face.box),
        score=face.score,
        identity=face.identity,
        identity_score=face.identity_score,
        landmarks=[pb.Point(x=x, y=y) for x, y in face.landmarks],
    )
    if face.embedding is not None:
        out.embedding.CopyFrom(embedding_pb(face.embedding))
    if face.attributes is not None:
        a = face.attributes
        out.attributes.CopyFrom(pb.FaceAttributes(
            age=a.age, gender=a.gender, gender_score=a.gender_score, expression=a.expression,
            expression_score=a.expression_score, model=a.model,
        ))
    return out


def text_line_pb(line: OcrLine) -> pb.TextLine:
    return pb.TextLine(
        text=line.text,
        score=line.score,
        polygon=[pb.Point(x=x, y=y) for x, y in line.polygon],
        box=box_pb(line.box),
    )


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()
