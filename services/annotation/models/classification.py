"""Image and clip classifiers: NSFW / disturbing / meme / hateful-meme scores and action labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.annotation.models.base import AdapterError, TaskModel
from services.annotation.models.preprocess import model_input, resize, softmax, to_tensor
from services.annotation.models.types import Label, Scored

# The label(s) whose probability is the task's positive score when the sidecar names none.
_DEFAULT_POSITIVE = {
    "nsfw_classification": ("nsfw", "porn", "hentai", "sexy", "unsafe"),
    "disturbing_classification": ("disturbing", "violence", "gore", "violent"),
    "meme_classification": ("meme",),
    "hateful_meme_classification": ("hateful",),
}


class ImageClassifier(TaskModel):

    @property
    def input_size(self) -> int:
        return int(self.param("input_size", 224))

    def _tensor(self, rgb: np.ndarray) -> np.ndarray:
        return model_input(rgb, self.params, self.input_size)

    def _probabilities(self, raw: np.ndarray) -> np.ndarray:
        raw = raw.reshape(raw.shape[0], -1).astype(np.float32)
        activation = self.param("activation", "auto")
        if activation == "softmax" or (
            activation == "auto" and not (np.all(raw >= 0) and np.allclose(raw.sum(axis=1), 1.0, atol=1e-3))
        ):
            return softmax(raw, axis=1)
        if activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-raw))
        return raw

    async def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(len(images), classes) probabilities."""
        step = self.spec.max_batch_size or 1
        parts = []
        for start in range(0, len(images), step):
            batch = np.stack([self._tensor(rgb) for rgb in images[start : start + step]])
            out = await self._infer({self.input_names[0]: batch})
            parts.append(self._probabilities(out[self.output_names[0]]))
        probs = np.concatenate(parts)
        if self.labels and probs.shape[1] != len(self.labels):
            raise AdapterError(f"model {self.name!r} gives {probs.shape[1]} scores for {len(self.labels)} labels")
        return probs

    def ranked(self, probs: np.ndarray, top_k: int | None = None) -> list[Label]:
        order = np.argsort(-probs)[: top_k or int(self.param("top_k", 5))]
        return [Label(self.label(int(i)), float(probs[i]), int(i)) for i in order]

    def positive_ids(self) -> list[int]:
        names = self.params.get("positive_labels") or self.params.get("nsfw_labels")
        if names:
            return [i for i, label in enumerate(self.labels) if label in set(names)]
        defaults = _DEFAULT_POSITIVE.get(self.task, ())
        ids = [i for i, label in enumerate(self.labels) if label.lower() in defaults]
        if ids:
            return ids
        if len(self.labels) == 2 or not self.labels:
            return [1]  # binary classifiers: class 1 is the positive class by convention
        raise AdapterError(f"model {self.name!r}: set `positive_labels` in its maam.json params")

    def scored(self, probs: np.ndarray) -> Scored:
        score = float(sum(probs[i] for i in self.positive_ids()))
        labels = self.ranked(probs, top_k=len(probs))
        return Scored(self.name, min(1.0, score), float(self.param("threshold", 0.5)), labels)

    async def score(self, rgb: np.ndarray) -> Scored:
        return self.scored((await self.probabilities([rgb]))[0])

    async def classify(self, rgb: np.ndarray) -> list[Label]:
        return self.ranked((await self.probabilities([rgb]))[0])


class ClipClassifier(TaskModel):
    """A video action model: a clip of `clip_len` frames, input laid out [3, T, S, S] (or
    [T, 3, S, S] when params layout is "TCHW")."""


    @property
    def clip_len(self) -> int:
        return int(self.param("clip_len", 8))

    async def classify_clip(self, frames: Sequence[np.ndarray]) -> list[Label]:
        if not frames:
            return []
        index = np.linspace(0, len(frames) - 1, self.clip_len).round().astype(int)
        size = int(self.param("input_size", 224))
        stack = np.stack(
            [to_tensor(resize(frames[i], size), self.params.get("mean"), self.params.get("std")) for i in index]
        )  # T, 3, S, S
        clip = stack if self.param("layout", "CTHW") == "TCHW" else stack.transpose(1, 0, 2, 3)
        out = await self._infer_one({self.input_names[0]: np.ascontiguousarray(clip)})
        raw = out[self.output_names[0]].reshape(-1).astype(np.float32)
        probs = raw if np.all(raw >= 0) and abs(float(raw.sum()) - 1.0) < 1e-3 else softmax(raw)
        order = np.argsort(-probs)[: int(self.param("top_k", 5))]
        return [Label(self.label(int(i)), float(probs[i]), int(i)) for i in order]
