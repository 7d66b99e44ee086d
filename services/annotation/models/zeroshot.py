"""CLIP zero-shot heads (services/models/zeroshot): the installed CLIP image encoder embeds the
image, the head's tiny ONNX turns the embedding into per-class cosines and calibrated scores.
They serve the classifier rows (disturbing content, memes) like any image classifier, and the
tags head lists an image's scene and object tags. Reported under the head's own name."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from services.annotation.models.base import AdapterError
from services.annotation.models.classification import ImageClassifier
from services.annotation.models.embedding import ImageEmbedder
from services.annotation.models.types import Label
from services.common.inference import InferenceBackend
from services.common.model_repository import ModelRepository, ModelSpec

log = logging.getLogger(__name__)


class ZeroShotHead(ImageClassifier):
    def __init__(self, spec: ModelSpec, backend: InferenceBackend, embedder: ImageEmbedder) -> None:
        super().__init__(spec, backend)
        self.embedder = embedder

    async def heads(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """{"cosine", "probabilities"}: [len(images), classes] each."""
        vectors = np.stack([v.values for v in await self.embedder.embed(images)]).astype(np.float32)
        step = self.spec.max_batch_size or len(vectors)
        parts = [await self._infer({"embedding": vectors[i : i + step]}) for i in range(0, len(vectors), step)]
        out = {k: np.concatenate([p[k] for p in parts]) for k in ("cosine", "probabilities")}
        if self.labels and out["probabilities"].shape[1] != len(self.labels):
            raise AdapterError(f"model {self.name!r} gives {out['probabilities'].shape[1]} scores for "
                               f"{len(self.labels)} labels")
        return out

    async def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return (await self.heads(images))["probabilities"]

    async def tags(self, rgb: np.ndarray) -> list[Label]:
        """The top_k classes whose score reaches the threshold."""
        probs = (await self.probabilities([rgb]))[0]
        threshold = float(self.param("threshold", 0.1))
        return [label for label in self.ranked(probs) if label.score >= threshold]


def build_zeroshot(spec: ModelSpec, backend: InferenceBackend) -> ZeroShotHead | None:
    """The head with its CLIP image encoder, or None (logged) when that CLIP is missing or changed."""
    from services.models.zeroshot.build import stale

    why = stale(spec)
    image_name = str(spec.meta.params.get("image_model", ""))
    try:
        image = ModelRepository(spec.path.parent).get_installed(image_name)
    except LookupError:
        why = why or f"{spec.name}: its CLIP image encoder {image_name!r} is not installed"
    if why:
        log.warning("%s", why)
        return None
    return ZeroShotHead(spec, backend, ImageEmbedder(image, backend))
