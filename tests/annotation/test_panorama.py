"""Seam-aware 360° saliency: each pass's weight vanishes at its own cut, and the blend of a map that breaks
at the frame's edges with a rolled pass that does not is continuous across the seam."""

from __future__ import annotations

import numpy as np

from services.annotation.models.panorama import combine, half_turn, seam_weights


def test_weights_vanish_at_the_cut_and_peak_half_way() -> None:
    weights = seam_weights(64)
    assert weights[0] < 0.01 and weights[-1] < 0.01 and weights[31] > 0.99
    assert np.allclose(weights, weights[::-1])


def test_the_blend_is_continuous_across_the_seam() -> None:
    width = 64
    columns = np.arange(width, dtype=np.float32)
    truth = np.cos(2 * np.pi * columns / width)[None, :].repeat(8, axis=0)  # periodic: no seam
    flat = truth + np.where(columns < 4, 1.0, 0.0)[None, :]  # the flat pass is wrong next to its cut
    rgb = np.zeros((8, width, 3), np.uint8)
    rolled, shift = half_turn(rgb)
    assert shift == 32 and rolled.shape == rgb.shape
    rolled_map = np.roll(truth, shift, axis=1)  # the rolled pass saw the seam's neighbours
    blended = combine(flat, rolled_map, shift, width)
    assert abs(blended[0, 0] - blended[0, -1]) < abs(flat[0, 0] - flat[0, -1]) / 10
    assert np.abs(blended - truth).max() < 0.2
    assert np.allclose(blended[:, 32], flat[:, 32], atol=1e-5)  # half-way: the flat pass, as it is
