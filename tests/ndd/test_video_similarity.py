"""Chamfer similarity and temporal alignment on frame descriptors."""

from __future__ import annotations

import numpy as np

from services.ndd.video import VideoFeatures, compare


def _features(vectors: np.ndarray, start: float = 0.0) -> VideoFeatures:
    times = start + np.arange(len(vectors), dtype=np.float32)
    return VideoFeatures(vectors.astype(np.float32), times, float(len(vectors)))


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 63))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_clip_aligns_to_its_place_in_the_reference():
    rng = np.random.default_rng(0)
    reference = _unit(rng, 30)
    noisy = reference[10:18] + 0.05 * rng.standard_normal((8, 63))
    score, [segment] = compare(_features(noisy / np.linalg.norm(noisy, axis=1, keepdims=True)), _features(reference))
    assert score > 0.75
    assert (segment.query_start, segment.query_end) == (0.0, 7.0)
    assert (segment.reference_start, segment.reference_end) == (10.0, 17.0)


def test_unrelated_videos_score_zero_without_segments():
    rng = np.random.default_rng(1)
    score, segments = compare(_features(_unit(rng, 8)), _features(_unit(rng, 30)))
    assert score == 0.0 and segments == []


def test_shuffled_frames_score_lower_than_ordered_ones():
    rng = np.random.default_rng(2)
    reference = _unit(rng, 20)
    ordered, _ = compare(_features(reference[5:15]), _features(reference))
    shuffled, _ = compare(_features(reference[rng.permutation(np.arange(5, 15))]), _features(reference))
    assert ordered > shuffled
