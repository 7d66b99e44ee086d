"""Kinetics-400 clip classifiers exported from torchvision (`maam models pull kinetics_r2plus1d_18`):
frames are prepared exactly as the weights' own `VideoClassification` transform declares (its
resize, centre crop, mean and std are copied into maam.json by the exporter), in NumPy so the
service needs no torch. An image is classified as a still clip: the frame repeated in time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from services.annotation.models.classification import ClipClassifier
from services.annotation.models.preprocess import softmax
from services.annotation.models.types import Label

FORMAT = "torchvision_video"


def _resized_size(height: int, width: int, size: Sequence[int]) -> tuple[int, int]:
    """torchvision's F.resize size rule: (h, w) as given, or one int for the shorter side."""
    if len(size) == 2:
        return int(size[0]), int(size[1])
    short, long_ = (height, width) if height <= width else (width, height)
    new_short, new_long = int(size[0]), int(int(size[0]) * long_ / short)
    return (new_short, new_long) if height <= width else (new_long, new_short)


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's bilinear source indices and weights along one axis (align_corners=False)."""
    scale = np.float32(n_in / n_out)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = np.clip(src - i0, 0, 1).astype(np.float32)
    return i0, i1, (np.float32(1) - w1).astype(np.float32), w1


def resize_like_torchvision(rgb: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Bilinear, no antialiasing (the video presets hard-code antialias=False), half-pixel centres,
    in float32 with PyTorch's order of operations (width first, then height), rounded back to uint8
    as torchvision does for uint8 tensors. cv2.resize rounds its weights and differs more often."""
    height, width = _resized_size(rgb.shape[0], rgb.shape[1], size)
    x = rgb.astype(np.float32)
    x0, x1, wx0, wx1 = _linear_taps(x.shape[1], width)
    rows = x[:, x0] * wx0[None, :, None] + x[:, x1] * wx1[None, :, None]
    y0, y1, wy0, wy1 = _linear_taps(x.shape[0], height)
    out = rows[y0] * wy0[:, None, None] + rows[y1] * wy1[:, None, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def center_crop(rgb: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """torchvision's F.center_crop offsets (int(round(...))); the crop must fit the frame."""
    crop_h, crop_w = int(size[0]), int(size[-1])
    top = round((rgb.shape[0] - crop_h) / 2.0)
    left = round((rgb.shape[1] - crop_w) / 2.0)
    return rgb[top : top + crop_h, left : left + crop_w]


def clip_tensor(frames: Sequence[np.ndarray], params: Mapping[str, Any]) -> np.ndarray:
    """uint8 HWC RGB frames -> float32 [3, T, H, W]: the weights' transform, step by step."""
    mean = np.asarray(params["mean"], np.float32).reshape(1, 1, 3)
    std = np.asarray(params["std"], np.float32).reshape(1, 1, 3)
    prepared = [
        (center_crop(resize_like_torchvision(f, params["resize_size"]), params["crop_size"]).astype(np.float32) / 255.0
         - mean) / std
        for f in frames
    ]
    return np.ascontiguousarray(np.stack(prepared).transpose(3, 0, 1, 2), dtype=np.float32)


class VideoClassifier(ClipClassifier):
    """A clip model with torchvision's preprocessing; serves videos (per clip) and images (a still)."""

    @property
    def clip_len(self) -> int:
        return int(self.param("clip_len", 16))

    def sample(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """clip_len frames spread evenly over the clip (a still: the one frame repeated)."""
        index = np.linspace(0, len(frames) - 1, self.clip_len).round().astype(int)
        return [frames[i] for i in index]

    async def probabilities(self, clips: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        step = self.spec.max_batch_size or 1
        parts = []
        for start in range(0, len(clips), step):
            batch = np.stack([clip_tensor(self.sample(c), self.params) for c in clips[start : start + step]])
            out = await self._infer({self.input_names[0]: batch})
            parts.append(softmax(out[self.output_names[0]].reshape(len(batch), -1).astype(np.float32), axis=1))
        return np.concatenate(parts)

    def ranked(self, probs: np.ndarray) -> list[Label]:
        order = np.argsort(-probs)[: int(self.param("top_k", 5))]
        return [Label(self.label(int(i)), float(probs[i]), int(i)) for i in order]

    async def classify_clip(self, frames: Sequence[np.ndarray]) -> list[Label]:
        if not frames:
            return []
        return self.ranked((await self.probabilities([frames]))[0])

    async def classify(self, rgb: np.ndarray) -> list[Label]:
        """ImageActionRecognition: the image as a still clip."""
        return await self.classify_clip([rgb])
