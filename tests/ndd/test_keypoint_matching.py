"""Keypoint verification's matching (services/ndd/descriptors/keypoints.py) finds what OpenCV's brute-force
Hamming matcher finds, pair for pair, so swapping it in changed no score."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data as data

from services.ndd.descriptors import keypoints as kp


def _photo(name: str) -> np.ndarray:
    image = getattr(data, name)()
    return np.ascontiguousarray(np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3])


def _opencv_good_pairs(query: kp.Keypoints, reference: kp.Keypoints) -> list[tuple[int, int, float]]:
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query.descriptors, reference.descriptors, k=2)
    return [(p[0].queryIdx, p[0].trainIdx, p[0].distance) for p in pairs
            if len(p) == 2 and p[0].distance < 0.8 * p[1].distance and p[0].distance < 64]


def _ours(query: kp.Keypoints, reference: kp.Keypoints) -> list[tuple[int, int, float]]:
    distances, nearest = kp._nearest_two(query.descriptors, reference.descriptors)
    good = (nearest[:, 1] >= 0) & (distances[:, 0] < 0.8 * distances[:, 1]) & (distances[:, 0] < 64)
    return [(int(i), int(nearest[i, 0]), float(distances[i, 0])) for i in np.flatnonzero(good)]


@pytest.mark.parametrize(("query", "reference"), [
    ("astronaut", "astronaut"), ("astronaut", "chelsea"), ("coffee", "rocket"), ("camera", "camera")])
def test_the_ratio_test_keeps_the_pairs_opencv_keeps(query: str, reference: str) -> None:
    q = kp.detect(_photo(query)[20:-30, 40:])  # a crop: not the identical image
    r = kp.detect(_photo(reference))
    ours, theirs = _ours(q, r), _opencv_good_pairs(q, r)
    assert ours == theirs
    if query == reference:
        assert len(ours) > 100  # a crop of the same photo: many pairs, so the equality compared something


def test_nearest_two_distances_equal_opencvs_on_every_query_code() -> None:
    q, r = kp.detect(_photo("coffee")), kp.detect(_photo("chelsea"))
    distances, _ = kp._nearest_two(q.descriptors, r.descriptors)
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(q.descriptors, r.descriptors, k=2)
    assert np.array_equal(distances, np.array([[p[0].distance, p[1].distance] for p in pairs]))


def test_verify_scores_a_crop_high_and_another_photo_zero() -> None:
    astronaut = _photo("astronaut")
    reference = kp.detect(astronaut)
    assert kp.verify(kp.detect(astronaut[30:400, 50:450]), reference) > 0.5
    assert kp.verify(kp.detect(_photo("chelsea")), reference) == 0.0
