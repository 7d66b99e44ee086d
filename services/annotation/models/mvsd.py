"""MV-SD saliency (source document 3.3; exported by `maam models train mvsd --install NAME`): a clip model,
`frames` [batch, T, 3, S, S] → `saliency` [batch, T, S, S] in [0, 1] (sidecar `params.format: mvsd`). An
image is a clip of one frame; a video's keyframes go through in windows of `clip_frames`, so the temporal
module sees their order; 360° equirectangular frames are predicted seam-aware (panorama.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import cv2
import numpy as np

from services.annotation.models.panorama import combine, half_turn
from services.annotation.models.preprocess import resize, to_tensor
from services.annotation.models.saliency import SaliencyModel, map_size, salient_regions
from services.annotation.models.types import Saliency


class MvsdSaliency(SaliencyModel):
    @property
    def clip_frames(self) -> int:
        return max(1, int(self.param("clip_frames", 8)))

    def _tensor(self, rgb: np.ndarray) -> np.ndarray:
        size = int(self.param("input_size", 224))
        return to_tensor(resize(rgb, size), self.params.get("mean"), self.params.get("std"))

    async def _clip(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Raw maps [S, S] of consecutive frames, one clip per window of clip_frames."""
        maps: list[np.ndarray] = []
        for start in range(0, len(frames), self.clip_frames):
            clip = np.stack([self._tensor(rgb) for rgb in frames[start:start + self.clip_frames]])
            out = await self._infer({self.input_names[0]: clip[None]})
            maps.extend(np.asarray(m, np.float32) for m in out[self.output_names[0]][0])
        return maps

    async def saliency(self, rgb: np.ndarray, equirectangular: bool = False) -> Saliency:
        return (await self.saliency_frames([rgb], equirectangular))[0]

    async def saliency_frames(self, frames: Sequence[np.ndarray], equirectangular: bool = False) -> list[Saliency]:
        if not frames:
            return []
        if not equirectangular:
            raw = await self._clip(frames)
        else:
            # The clip as it is and the clip turned by half a revolution, then each frame's two maps blended.
            flat = await self._clip(frames)
            turned = await self._clip([half_turn(rgb)[0] for rgb in frames])
            shift = frames[0].shape[1] // 2
            raw = [combine(a, b, shift, rgb.shape[1]) for rgb, a, b in zip(frames, flat, turned, strict=True)]
        return [await asyncio.to_thread(self._finish, m, rgb) for m, rgb in zip(raw, frames, strict=True)]

    def _finish(self, raw: np.ndarray, rgb: np.ndarray) -> Saliency:
        height, width = rgb.shape[:2]
        resized = cv2.resize(raw, map_size(width, height), interpolation=cv2.INTER_LINEAR)
        span = float(resized.max() - resized.min())
        saliency = (resized - resized.min()) / span if span > 0 else np.zeros_like(resized)
        return Saliency(self.name, saliency, salient_regions(saliency))
