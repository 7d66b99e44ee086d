"""Saliency: a saliency model ([1, S, S] map) when installed, else the spectral-residual method
(Hou & Zhang, CVPR 2007), which is reported under its own name, never as a model."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np

from services.annotation.models.base import TaskModel
from services.annotation.models.preprocess import resize, to_tensor
from services.annotation.models.types import Box, Saliency

SPECTRAL_RESIDUAL = "spectral-residual"
# Longer side of the maps returned. Saliency is smooth (computed at 64-256 pixels), so a full-size
# map of a 24-megapixel photo would be megabytes of PNG and seconds of region search for nothing;
# clients scale the map to the image to overlay it (the regions are normalised anyway).
MAP_MAX_SIDE = 512


def map_size(width: int, height: int, max_side: int = MAP_MAX_SIDE) -> tuple[int, int]:
    """(width, height) of the map of a width x height image: its aspect, at most max_side long."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def salient_regions(saliency: np.ndarray, max_regions: int = 5) -> list[Box]:
    """Boxes around connected areas above mean + 2 std (at least the top 5%), most salient first."""
    height, width = saliency.shape
    threshold = max(float(saliency.mean() + 2 * saliency.std()), float(np.quantile(saliency, 0.95)))
    mask = (saliency >= threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    regions: list[tuple[float, Box]] = []
    for i in range(1, count):
        x, y, w, h, _ = stats[i]
        mass = float(saliency[labels == i].sum())
        regions.append((mass, (x / width, y / height, (x + w) / width, (y + h) / height)))
    regions.sort(key=lambda r: -r[0])
    return [box for _, box in regions[:max_regions]]


def spectral_residual(rgb: np.ndarray, work_size: int = 64, max_side: int = MAP_MAX_SIDE) -> np.ndarray:
    """The log-amplitude spectrum minus its local average, back to the image domain (a map at
    most max_side long)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = cv2.resize(grey, (work_size, work_size), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-8)
    phase = np.angle(spectrum)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), sigmaX=2.5)
    saliency = cv2.resize(saliency, map_size(rgb.shape[1], rgb.shape[0], max_side), interpolation=cv2.INTER_LINEAR)
    span = float(saliency.max() - saliency.min())
    return (saliency - saliency.min()) / span if span > 0 else np.zeros_like(saliency)


def spectral_residual_saliency(rgb: np.ndarray) -> Saliency:
    saliency = spectral_residual(rgb)
    return Saliency(SPECTRAL_RESIDUAL, saliency, salient_regions(saliency))


class SpectralResidual:
    """The model-free fallback as a runner: the FFTs run in a worker thread, off the event loop."""

    name = SPECTRAL_RESIDUAL

    async def saliency(self, rgb: np.ndarray) -> Saliency:
        return await asyncio.to_thread(spectral_residual_saliency, rgb)


class SaliencyModel(TaskModel):
    async def saliency(self, rgb: np.ndarray) -> Saliency:
        size = int(self.param("input_size", 256))
        tensor = to_tensor(resize(rgb, size), self.params.get("mean"), self.params.get("std"))
        out = await self._infer_one({self.input_names[0]: tensor})
        raw = np.squeeze(out[self.output_names[0]]).astype(np.float32)
        # The map (at the image's aspect, see MAP_MAX_SIDE) and region search off the event loop.
        return await asyncio.to_thread(self._postprocess, raw, rgb.shape[1], rgb.shape[0])

    def _postprocess(self, raw: np.ndarray, width: int, height: int) -> Saliency:
        if self.param("activation", "none") == "sigmoid":
            raw = 1.0 / (1.0 + np.exp(-raw))
        raw = cv2.resize(raw, map_size(width, height), interpolation=cv2.INTER_LINEAR)
        span = float(raw.max() - raw.min())
        saliency = (raw - raw.min()) / span if span > 0 else np.zeros_like(raw)
        return Saliency(self.name, saliency, salient_regions(saliency))
