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


def test_inner_windows_match_whole_frames_but_never_each_other():
    """Rows sharing a time are one frame's views (whole frame first, then inner windows)."""
    a, b, c = np.eye(63, dtype=np.float32)[:3]
    query = VideoFeatures(np.stack([a, b]), np.array([0.0, 0.0], np.float32), 1.0)  # whole a, window b
    windows_only = VideoFeatures(np.stack([c, b]), np.array([0.0, 0.0], np.float32), 1.0)  # whole c, window b
    assert compare(query, windows_only) == (0.0, [])
    whole_b = VideoFeatures(np.stack([b]), np.array([0.0], np.float32), 1.0)
    score, [segment] = compare(query, whole_b)
    assert score == 1.0 and (segment.query_start, segment.reference_start) == (0.0, 0.0)
