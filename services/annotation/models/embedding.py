"""Embedders: CLIP-like image encoders (whole images, regions, faces) and text encoders, all
returning L2-normalised vectors so cosine similarity is a dot product."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.annotation.models.base import TaskModel
from services.annotation.models.preprocess import model_input
from services.annotation.models.types import Vector
from services.common.inference import InferenceBackend
from services.common.model_repository import ModelSpec
from services.common.text_encoding import encoder_inputs, pool_tokens
from services.common.text_tokenizers import tokenizer_from_params


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


class ImageEmbedder(TaskModel):

    async def embed(self, images: Sequence[np.ndarray]) -> list[Vector]:
        if not images:
            return []
        max_batch = self.spec.max_batch_size or 1
        vectors: list[np.ndarray] = []
        for start in range(0, len(images), max_batch):
            batch = np.stack([model_input(rgb, self.params) for rgb in images[start : start + max_batch]])
            out = await self._infer({self.input_names[0]: batch})
            raw = out[self.output_names[0]].reshape(len(batch), -1).astype(np.float32)
            vectors.extend(_normalise_rows(raw))
        return [Vector(self.name, v) for v in vectors]

    async def embed_one(self, rgb: np.ndarray) -> Vector:
        return (await self.embed([rgb]))[0]


class TextEmbedder(TaskModel):
    """Text encoders, tokenised exactly as the CMRR service does (services.common.text_tokenizers),
    so a text gets the same vector from either service."""


    def __init__(self, spec: ModelSpec, backend: InferenceBackend) -> None:
        super().__init__(spec, backend)
        self.tokenizer = tokenizer_from_params(self.spec.path, self.spec.meta.params, self.spec.meta.source)

    async def embed_text(self, text: str) -> Vector:
        ids = self.tokenizer([text])
        inputs, mask = encoder_inputs(ids, self.input_names)
        out = await self._infer(inputs)
        raw = pool_tokens(out[self.output_names[0]], mask)
        return Vector(self.name, _normalise_rows(raw.reshape(1, -1))[0])
