"""Seam-aware saliency of 360° equirectangular frames: the left and right edges of such a frame are
neighbours, which a model fed the flat frame cannot see. The frame is predicted as it is and rolled by half
its width (the seam then lies in the middle, between real neighbours); the rolled map is rolled back and the
two are cross-faded with weights that vanish at each pass's own cut, so the result is continuous across the
seam and each column comes mostly from the pass that saw it furthest from a cut."""

from __future__ import annotations

import numpy as np


def half_turn(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    shift = rgb.shape[1] // 2
    return np.roll(rgb, shift, axis=1), shift


def seam_weights(width: int) -> np.ndarray:
    """Weight of the unrolled pass per column: 0 at its cut (x = 0, the frame's edges), 1 half-way."""
    x = (np.arange(width, dtype=np.float32) + 0.5) / width
    return np.sin(np.pi * x) ** 2


def blend(flat: np.ndarray, rolled_back: np.ndarray) -> np.ndarray:
    weights = seam_weights(flat.shape[1])[None, :]
    return weights * flat + (1.0 - weights) * rolled_back


def combine(flat_map: np.ndarray, rolled_map: np.ndarray, shift: int, image_width: int) -> np.ndarray:
    """The map of the frame as it is and the map of the frame rolled by `shift` pixels (any equal size):
    the second rolled back, then the two cross-faded."""
    back = np.roll(rolled_map, -round(shift * rolled_map.shape[1] / image_width), axis=1)
    return blend(flat_map, back)
